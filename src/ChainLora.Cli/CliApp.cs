// The `chainlora` executable: parses, then delegates to the library. Exit codes: 0 success,
// 2 bad usage or bad input (one line on stderr naming the option, file or value), 3 training
// diverged (result.json records where), 130 stopped by Ctrl+C or SIGTERM (train after checkpointing,
// export leaving its output folder as it was, a download keeping its partial file), 1 any other failure.
using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.RegularExpressions;
using ChainLora.Cli.Commands;

namespace ChainLora.Cli;

public static partial class CliApp
{
    /// <summary>What users type: usage lines say `chainlora`, whatever the executable is called (ChainLora.Cli.dll under dotnet).</summary>
    public const string CommandName = "chainlora";

    /// <summary>Every command takes it: a failure then also prints the exception with its .NET (and libtorch C++) trace.</summary>
    static readonly Option<bool> Verbose = new("--verbose") { Description = "On failure, also print the full exception and its stack trace", Recursive = true };

    public static Command Build(TextWriter output)
    {
        // A plain command rather than RootCommand, whose name is the executable's.
        var root = new Command(CommandName, "ChainLora: LoRA and Chain of LoRA (COLA) fine-tuning for decoder language models. " +
            "Exit codes: 0 success, 1 failure, 2 bad usage or input, 3 training diverged (OUT/result.json has \"status\": \"diverged\"), " +
            "130 stopped by Ctrl+C or SIGTERM (train: after saving a checkpoint, continue with --resume; export: --out left as it was; a download keeps its partial file to resume from).");
        root.Options.Add(new System.CommandLine.Help.HelpOption());
        root.Options.Add(new VersionOption());
        root.Options.Add(Verbose);
        root.Subcommands.Add(GenerateCommand.Create(output));
        root.Subcommands.Add(PerplexityCommand.Create(output));
        root.Subcommands.Add(DemoCommand.Create(output));
        root.Subcommands.Add(BenchCommand.Create(output));
        root.Subcommands.Add(EvalCommand.Create(output));
        root.Subcommands.Add(TrainCommand.Create(output));
        root.Subcommands.Add(ExperimentCommands.Experiment(output));
        root.Subcommands.Add(ExperimentCommands.RunJob(output));
        root.Subcommands.Add(ExperimentCommands.Report(output));
        root.Subcommands.Add(ExportCommand.Create(output));
        root.Subcommands.Add(DataCommand.Create(output));
        root.Subcommands.Add(ChatCommand.Create(output));
        root.Subcommands.Add(FrankWolfeCommand.Create(output));
        return root;
    }

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        Runtime.Allocator.KeepFreedMemoryForReuse();
        Runtime.Allocator.UseHugePagesForTensors();
        var parse = Build(output).Parse(args);
        if (parse.Errors.Count > 0)
        {
            // An unknown word says more than "Required command was not provided", which comes with it.
            var first = parse.Errors.OrderBy(e => e.Message.StartsWith("Required command", StringComparison.Ordinal) ? 1 : 0).First();
            error.WriteLine($"error: {first.Message} (see --help)");
            return 2;
        }
        // Signals are caught only for commands that take the stop token (CommonOptions.SetStoppableAction,
        // an asynchronous action); System.CommandLine's own handling, which ends the process 2 s after
        // the signal, is off: train may need longer to finish its step.
        using var signals = parse.Action is AsynchronousCommandLineAction ? new StopSignals() : null;
        try
        {
            // Grid workers share the cores: `experiment --jobs N` gives each child its share. Inside
            // the try: loading the runtime can fail on the user's input (CHAINLORA_LIBTORCH).
            if (int.TryParse(Environment.GetEnvironmentVariable("CHAINLORA_THREADS"), out var threads) && threads > 0)
            {
                Runtime.NativeRuntime.Ensure();
                TorchSharp.torch.set_num_threads(threads);
            }
            return parse.InvokeAsync(new InvocationConfiguration
            {
                Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null,
            }, signals?.Token ?? default).GetAwaiter().GetResult();
        }
        catch (Exception e) when (parse.GetValue(Verbose) && Trace(e, error))
        {
            throw; // not reached: Trace prints and declines the exception, which the handlers below then take
        }
        catch (Training.TrainingStoppedException e)
        {
            error.WriteLine($"interrupted: {e.Message}{(e.Checkpoint is null ? "" : "; continue with --resume")}");
            return 130;
        }
        catch (OperationCanceledException e) when (signals?.Token.IsCancellationRequested == true)
        {
            // Stopped before training began, or a command without checkpoints: the message says what was kept.
            error.WriteLine($"interrupted: {OneLine(e.Message)}");
            return 130;
        }
        catch (Training.TrainingDivergedException e)
        {
            error.WriteLine($"error: {e.Message}; the last checkpoint is from before it");
            return 3;
        }
        catch (IOException e) when (e.HResult == 28 || e.Message.Contains("No space left on device", StringComparison.Ordinal))
        {
            // ENOSPC: every file ChainLora writes goes through a temporary that is removed, so what was there stays whole;
            // a download is the exception, keeping its partial file on purpose to resume from, which its message names.
            error.WriteLine(e is IO.Hub.PartialDownloadException
                ? $"failed: the disk is full: {OneLine(e.Message)}"
                : $"failed: the disk is full ({OneLine(e.Message)}); files written before are intact, nothing half-written was kept");
            return 1;
        }
        catch (Exception e) when (IsUserError(e))
        {
            error.WriteLine($"error: {OneLine(e.Message)}");
            return 2;
        }
        catch (Exception e)
        {
            // libtorch's messages carry their C++ frames after the first line; --verbose shows them.
            error.WriteLine($"failed: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}");
            return 1;
        }
    }

    /// <summary>Prints <paramref name="e"/> whole; false, so the exception filter passes it on to its handler.</summary>
    static bool Trace(Exception e, TextWriter error)
    {
        error.WriteLine(e.ToString());
        return false;
    }

    static bool IsUserError(Exception e) =>
        e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or FormatException
            or IO.FolderInUseException or Runtime.MemoryBudgetExceededException
            // a gated or private Hub repository without (or with a wrong) HF_TOKEN; the Hub unreachable
            // (the network, HF_ENDPOINT), but not a server error (HTTP 5xx), which is the server's fault
            or UnauthorizedAccessException or System.Net.Http.HttpRequestException { StatusCode: null or < (System.Net.HttpStatusCode)500 };

    /// <summary>
    /// A message on one line, whatever it quotes (a parser echoing a file's bad bytes, a server's
    /// page): line breaks and the white space around them become one space.
    /// </summary>
    static string OneLine(string message) => LineBreak().Replace(message.Trim(), " ");

    [GeneratedRegex(@"\s*[\r\n]+\s*")]
    private static partial Regex LineBreak();
}
