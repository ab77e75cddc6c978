using ChainLora.Export;
using ChainLora.Loading;
using ChainLora.Models;
using ChainLora.Runtime;
using ChainLora.Tests.Export;
using static TorchSharp.torch;

namespace ChainLora.Tests.Loading;

/// <summary>
/// Loading fills the model's own bf16 weights tensor by tensor: the resident set grows by the final
/// weights plus one tensor of staging, never by a second (fp32) copy of the model. Loading all
/// tensors first, as before, grew it by 3x the final weights here (fp32 file + bf16 model).
/// </summary>
public class LoadMemoryTests : TempFolderTest
{
    [Fact]
    public void Loading_an_fp32_checkpoint_into_bf16_grows_the_resident_set_by_under_1_3x_the_weights()
    {
        Assert.SkipUnless(ProcessMemory.ResetPeak(), "this kernel does not allow resetting the resident-set peak (/proc/self/clear_refs)");
        // 24 layers of width 512: ~77M parameters, 300 MB of fp32 on disk, 150 MB in bf16; no tensor above 4 MB.
        var config = new OptConfig
        {
            VocabSize = 4096, HiddenSize = 512, FfnDim = 2048, NumHiddenLayers = 24, NumAttentionHeads = 8, MaxPositionEmbeddings = 64,
        };
        var dir = PathIn("model");
        using (var random = new OptForCausalLM(config))
        {
            ExportKit.WriteTinyBpe(PathIn("tok"));
            MergedExport.Save(random, dir, PathIn("tok"), cancel: TestContext.Current.CancellationToken);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();

        var before = ProcessMemory.CurrentRssMb();
        ProcessMemory.ResetPeak();
        using var loaded = PretrainedModel.Load(dir, ScalarType.BFloat16);
        var grown = ProcessMemory.PeakRssMb() - before;
        var weights = loaded.Model.parameters().Sum(p => p.numel() * p.element_size()) / 1048576.0;
        TestContext.Current.TestOutputHelper?.WriteLine($"resident set grew {grown:F0} MB for {weights:F0} MB of weights");
        Assert.True(grown < 1.3 * weights, $"loading grew the resident set by {grown:F0} MB for {weights:F0} MB of weights");
    }
}
