using ChainLora.Cli;

namespace ChainLora.Tests;

/// <summary>Runs the `chainlora` command line in-process and captures its output.</summary>
static class CliHarness
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = CliApp.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
