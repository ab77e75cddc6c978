// Training progress on stderr (stdout stays clean for tables and --json lines).
using ChainLora.Training;
using Spectre.Console;

namespace ChainLora.Cli;

static class TrainingProgress
{
    public static IAnsiConsole ErrorConsole { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
    });

    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar per named task; the callback it receives
    /// reports (task name, step report). Falls back to no bar when stderr is not a terminal.
    /// </summary>
    public static T Run<T>(IReadOnlyList<string> tasks, int totalSteps, Func<Action<string, StepReport>, T> work)
    {
        if (Console.IsErrorRedirected) return work((_, _) => { });
        T result = default!;
        ErrorConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bars = tasks.ToDictionary(t => t, t => ctx.AddTask(Markup.Escape(t), autoStart: false, maxValue: totalSteps));
                result = work((name, r) =>
                {
                    var bar = bars[name];
                    if (!bar.IsStarted) bar.StartTask();
                    bar.Value = r.Step;
                    bar.Description = Markup.Escape($"{name}  link {r.Link}/{r.Links}  loss {r.Loss:F4}");
                });
            });
        return result;
    }
}
