using ChainLora.Runtime;
using static TorchSharp.torch;

namespace ChainLora.Tests.Runtime;

public class NativeRuntimeTests
{
    [Fact]
    public void A_tensor_op_and_a_backward_pass_run()
    {
        NativeRuntime.Ensure();
        NativeRuntime.Ensure(); // idempotent
        var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]).requires_grad_(true);
        var loss = a.matmul(a).sum();
        loss.backward();
        // A A = [[7, 10], [15, 22]]; d/dA sum(A A) = J A^T + A^T J with J all ones.
        Assert.Equal(54f, loss.item<float>());
        Assert.Equal(new float[] { 7, 11, 9, 13 }, a.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Patch_marks_only_the_missing_version_weak_and_is_idempotent()
    {
        var shim = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
        if (shim is null) Assert.Skip("no linux-x64 libLibTorchSharp.so beside the test binaries");
        var bytes = File.ReadAllBytes(shim);
        var before = ElfVersionPatch.ListVersionNeeds(bytes);
        Assert.Contains(before, v => v.Name == "GLIBCXX_3.4.32" && !v.Weak);

        Assert.Equal(1, ElfVersionPatch.MarkVersionNeedWeak(bytes, "GLIBCXX_3.4.32"));
        Assert.Equal(0, ElfVersionPatch.MarkVersionNeedWeak(bytes, "GLIBCXX_3.4.32"));
        var after = ElfVersionPatch.ListVersionNeeds(bytes);
        Assert.Equal(before.Count, after.Count);
        foreach (var (b, a) in before.Zip(after))
            Assert.Equal(b.Name == "GLIBCXX_3.4.32" || b.Weak, a.Weak);
    }

    [Fact]
    public void A_non_elf_file_is_refused_clearly()
    {
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionPatch.MarkVersionNeedWeak("not an elf file at all, just text"u8.ToArray(), "X"));
        Assert.Contains("ELF", e.Message);
    }
}
