// Ctrl+C (SIGINT) and SIGTERM, caught in one place: CliApp registers them around a stoppable
// command and hands that command's action the one token they cancel, which the command passes on to
// Hub downloads, training and scoring.
using System.Runtime.InteropServices;

namespace ChainLora.Cli;

/// <summary>
/// SIGINT and SIGTERM as a <see cref="Token"/>. The first signal cancels it and keeps the process
/// alive, so that the command stops where it safely can (train: after the step in progress, with a
/// checkpoint; a download: at once, its partial file kept). A second signal ends the process at
/// once, as if nothing were registered: the way out of work that cannot look at the token, such as
/// loading a large model.
/// </summary>
sealed class StopSignals : IDisposable
{
    readonly CancellationTokenSource source = new();
    readonly PosixSignalRegistration sigint;
    readonly PosixSignalRegistration sigterm;

    public StopSignals()
    {
        sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
    }

    public CancellationToken Token => source.Token;

    void Handle(PosixSignalContext context)
    {
        context.Cancel = !source.IsCancellationRequested;
        source.Cancel();
    }

    public void Dispose()
    {
        sigint.Dispose();
        sigterm.Dispose();
        source.Dispose();
    }
}
