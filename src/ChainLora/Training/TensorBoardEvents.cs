// TensorBoard event files through TorchSharp's SummaryWriter: one folder per run, so TensorBoard
// overlays runs (LoRA beside COLA) when pointed at their parent.
//   train/loss, train/learning_rate, train/tokens_per_s, train/grad_norm   per optimizer step
//   chain/knot                                                           at each knot: the new link's number
//   dev/<metric>, test/<metric>                                          after training, at the last step
using static TorchSharp.torch.utils.tensorboard;

namespace ChainLora.Training;

public sealed class TensorBoardEvents(string dir)
{
    readonly TorchSharp.Modules.SummaryWriter writer = SummaryWriter(Path.GetFullPath(dir));

    /// <summary>The run folder the event file is in.</summary>
    public string Folder => writer.LogDir;

    /// <summary>One scalar at <paramref name="step"/>, stamped with the wall time in whole seconds since 1970.</summary>
    public void Scalar(string tag, double value, int step) =>
        writer.add_scalar(tag, (float)value, step, walltime: DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    public void Step(int step, double loss, double lr, double tokensPerSecond, double gradNorm)
    {
        Scalar("train/loss", loss, step);
        Scalar("train/learning_rate", lr, step);
        Scalar("train/tokens_per_s", tokensPerSecond, step);
        Scalar("train/grad_norm", gradNorm, step);
    }

    /// <summary>A marker where link <paramref name="link"/> begins (its value is the link's number).</summary>
    public void Knot(int step, int link) => Scalar("chain/knot", link, step);

    /// <summary>Evaluation metrics under <paramref name="split"/>/ (dev, test).</summary>
    public void Metrics(string split, IReadOnlyDictionary<string, double> metrics, int step)
    {
        foreach (var (name, value) in metrics) Scalar($"{split}/{name}", value, step);
    }
}
