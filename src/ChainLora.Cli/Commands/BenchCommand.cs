using System.CommandLine;
using ChainLora.Benchmarking;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Training;

namespace ChainLora.Cli.Commands;

static class BenchCommand
{
    public static Command Create(TextWriter output)
    {
        var shape = new Option<string>("--shape") { Description = "Random-weight model of a named shape: " + string.Join(", ", BenchShapes.Names) }
            .OneOf([.. BenchShapes.Names]);
        var model = new Option<string>("--model")
        {
            Description = "Load this model (a folder or a Hub id org/name[@revision]) instead of --shape; also reports the load's " +
                          "time and peak RSS against the weights",
        };
        var method = CommonOptions.Choice("--method", "Method (cola: two links, the knot mid-run)", TrainingMethod.Lora);
        var dtype = CommonOptions.BaseDtype();
        var defaults = new BenchOptions();
        var batch = new Option<int>("--batch") { Description = "Sequences per step", DefaultValueFactory = _ => defaults.Batch }.AtLeast(1);
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence", DefaultValueFactory = _ => defaults.Sequence }.AtLeast(2);
        var steps = new Option<int>("--steps") { Description = "Timed steps", DefaultValueFactory = _ => defaults.Steps }.AtLeast(1);
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps", DefaultValueFactory = _ => defaults.Warmup }.AtLeast(0);
        var threads = new Option<int>("--threads") { Description = "Torch intra-op threads (0 = TorchSharp's default)", DefaultValueFactory = _ => 0 }.AtLeast(0);
        var attention = CommonOptions.Choice("--attention",
            "Attention kernel (auto: math on CPU below head size 32, fused otherwise; fused: libtorch's " +
            "scaled_dot_product_attention; math: matmuls and softmax, causal blocks)", AttentionKernel.Auto);
        var checkpointing = CommonOptions.GradientCheckpointing();
        var activations = CommonOptions.Activations();
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        var command = new Command("bench",
            "Time a LoRA r=8 (q_proj, v_proj) / COLA / full training step with AdamW on a random-weight model of a named shape " +
            "or a loaded one (--model); " +
            "reports median step time, tokens/s, GFLOP/s, the matmul peak measured now, MFU, peak RSS, the GPU's peak memory in use (NVML) and knot time")
        {
            shape, model, method, dtype, batch, seq, steps, warmup, threads, attention, checkpointing, activations, device, json,
        };
        command.Validators.Add(r =>
        {
            if ((r.GetResult(shape) is null) == (r.GetResult(model) is null)) r.AddError("bench: give either --shape or --model");
        });
        command.SetAction(r =>
        {
            Runtime.NativeRuntime.Ensure();
            if (r.GetValue(threads) > 0) TorchSharp.torch.set_num_threads(r.GetValue(threads));
            var result = StepBenchmark.Run(new BenchOptions
            {
                Shape = r.GetValue(shape) ?? "", ModelDir = r.GetValue(model) is { } m ? CommonOptions.ModelFolder(m) : null, Method = r.GetEnum<TrainingMethod>(method),
                BaseDtype = StorageDtype.Parse(r.GetValue(dtype)!), Batch = r.GetValue(batch), Sequence = r.GetValue(seq),
                Steps = r.GetValue(steps), Warmup = r.GetValue(warmup), GradientCheckpointing = r.GetValue(checkpointing),
                Attention = r.GetEnum<AttentionKernel>(attention), Activations = r.GetEnum<ActivationPrecision>(activations),
                Device = CommonOptions.ParseDevice(r.GetValue(device)!),
            });
            output.WriteLine(r.GetValue(json)
                ? JsonLines.Serialize(new
                {
                    shape = result.Shape, method = result.Method, base_dtype = result.BaseDtype, batch = result.Batch, seq = result.Sequence,
                    steps = result.Steps, median_step_s = result.MedianStepSeconds, tokens_per_s = result.TokensPerSecond,
                    achieved_gflops = result.AchievedGflops, peak_gflops = result.PeakGflops, mfu = result.Mfu,
                    peak_rss_mb = result.PeakRssMb, knot_s = result.KnotSeconds,
                    knot_fraction_of_link = result.KnotFractionOfRealisticLink, threads = result.Threads,
                    attention = r.GetValue(attention), gradient_checkpointing = result.GradientCheckpointing,
                    device = r.GetValue(device), activations = result.Activations,
                    device_peak_mb = double.IsNaN(result.DevicePeakMb) ? (double?)null : result.DevicePeakMb, libtorch = result.LibTorch,
                    load_s = result.Load?.Seconds, load_rss_before_mb = result.Load?.RssBeforeMb, load_peak_rss_mb = result.Load?.PeakRssMb,
                    weights_mb = result.Load?.WeightsMb, load_peak_over_weights = result.Load?.PeakOverWeights,
                })
                : $"{result.Shape} {result.Method} {result.BaseDtype} B={result.Batch} T={result.Sequence} on {r.GetValue(device)}: " +
                  $"median step {result.MedianStepSeconds * 1000:F1} ms, {result.TokensPerSecond:F0} tokens/s, " +
                  $"{result.AchievedGflops:F1} GFLOP/s of {result.PeakGflops:F1} peak (MFU {result.Mfu:P1}), " +
                  $"peak RSS {result.PeakRssMb:F0} MB, knot {result.KnotSeconds * 1000:F1} ms " +
                  $"({result.KnotFractionOfRealisticLink:P3} of a link of 1000 examples x 5 epochs / 3), {result.Threads} threads" +
                  (result.GradientCheckpointing ? ", gradient checkpointing" : "") + $", {result.Activations} activations" +
                  (double.IsNaN(result.DevicePeakMb) ? "" : $", device memory peak {result.DevicePeakMb:F0} MB") +
                  (result.LibTorch is null ? "" : $", libtorch from {result.LibTorch}") +
                  (result.Load is { } load
                      ? $"; load {load.Seconds:F1} s, RSS {load.RssBeforeMb:F0} MB before and {load.PeakRssMb:F0} MB peak for " +
                        $"{load.WeightsMb:F0} MB of weights ({load.PeakOverWeights:F2}x)"
                      : ""));
            return 0;
        });
        return command;
    }
}
