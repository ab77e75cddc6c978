using System.Text.Json;
using ChainLora.Runtime;

namespace ChainLora.Tests.Runtime;

/// <summary>CHAINLORA_LIBTORCH: another libtorch (an installed PyTorch's torch/lib) is checked, then used.</summary>
public class ExternalLibTorchTests : TempFolderTest
{
    /// <summary>A torch/lib folder with stand-in library files and torch/version.py saying <paramref name="version"/>.</summary>
    string FakeTorch(string? version, string[]? libraries = null)
    {
        var lib = Directory.CreateDirectory(PathIn(Path.Combine("torch", "lib"))).FullName;
        foreach (var name in libraries ?? ["libc10.so", "libtorch_cpu.so", "libtorch.so"]) File.WriteAllText(Path.Combine(lib, name), "");
        if (version is not null) File.WriteAllText(PathIn(Path.Combine("torch", "version.py")), $"__version__ = '{version}'\ngit_version = 'abc'\n");
        return lib;
    }

    [Fact]
    public void A_pytorch_of_2_10_or_later_is_accepted_by_its_version_file()
    {
        Assert.Equal(new Version(2, 11), ExternalLibTorch.Check(FakeTorch("2.11.0+cu130")));
    }

    [Fact]
    public void A_libtorch_download_is_read_from_build_version()
    {
        var lib = FakeTorch(null);
        File.WriteAllText(PathIn(Path.Combine("torch", "build-version")), "2.10.0+cpu\n");
        Assert.Equal(new Version(2, 10), ExternalLibTorch.Check(lib));
    }

    [Theory]
    [InlineData("1.13.0a0+gitunknown", "libtorch 1.13.0a0+gitunknown")]   // Debian 12's python3-torch
    [InlineData("2.9.1", "libtorch 2.9.1")]
    [InlineData("3.0.0", "libtorch 3.0.0")]
    public void A_version_the_shim_cannot_run_is_refused_naming_both(string version, string named)
    {
        var e = Assert.Throws<ArgumentException>(() => ExternalLibTorch.Check(FakeTorch(version)));
        Assert.Contains(named, e.Message);
        Assert.Contains("built for libtorch 2.10", e.Message);
        Assert.StartsWith("CHAINLORA_LIBTORCH=", e.Message);
    }

    [Fact]
    public void A_folder_without_libtorch_or_without_a_version_is_refused()
    {
        Assert.Contains("no such folder", Assert.Throws<ArgumentException>(() => ExternalLibTorch.Check(PathIn("absent"))).Message);
        var lib = FakeTorch("2.11.0", libraries: ["libc10.so"]);
        Assert.Contains("libtorch_cpu.so, libtorch.so missing", Assert.Throws<ArgumentException>(() => ExternalLibTorch.Check(lib)).Message);
        File.Delete(PathIn(Path.Combine("torch", "version.py")));
        foreach (var name in new[] { "libtorch_cpu.so", "libtorch.so" }) File.WriteAllText(Path.Combine(lib, name), "");
        Assert.Contains("cannot tell which libtorch", Assert.Throws<ArgumentException>(() => ExternalLibTorch.Check(lib)).Message);
    }

    [Fact]
    public void The_cli_refuses_debians_libtorch_in_one_line_with_exit_2()
    {
        var (exit, _, err) = CliProcess.Run(["bench", "--shape", "tiny260k", "--steps", "1", "--warmup", "0"],
            new Dictionary<string, string> { [ExternalLibTorch.Variable] = FakeTorch("1.13.0a0") });
        Assert.Equal(2, exit);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("libtorch 1.13.0a0 cannot run TorchSharp 0.107", line);
    }

    [Fact]
    public void The_cli_trains_on_a_libtorch_from_another_folder()
    {
        // The bundled libtorch-cpu, linked into a folder of its own as a PyTorch installation would lay it out.
        var bundled = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        if (!File.Exists(Path.Combine(bundled, "libtorch_cpu.so"))) Assert.Skip($"no bundled libtorch in {bundled}");
        var lib = Directory.CreateDirectory(PathIn(Path.Combine("site", "torch", "lib"))).FullName;
        foreach (var file in Directory.GetFiles(bundled, "lib*.so*").Where(f => !f.Contains("LibTorchSharp")))
            File.CreateSymbolicLink(Path.Combine(lib, Path.GetFileName(file)), file);
        File.WriteAllText(PathIn(Path.Combine("site", "torch", "version.py")), "__version__ = '2.10.0+cpu'\n");

        var (exit, output, err) = CliProcess.Run(["bench", "--shape", "tiny260k", "--batch", "2", "--seq", "32", "--steps", "1", "--warmup", "0", "--json"],
            new Dictionary<string, string> { [ExternalLibTorch.Variable] = lib });
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        Assert.Equal(lib, json.RootElement.GetProperty("libtorch").GetString());
        Assert.True(json.RootElement.GetProperty("tokens_per_s").GetDouble() > 0);
    }

    [Fact]
    public void Without_an_nvidia_driver_device_memory_is_unknown_not_an_error()
    {
        if (File.Exists("/proc/driver/nvidia/version")) Assert.Skip("this machine has an NVIDIA driver");
        Assert.Null(DeviceMemory.Query(0));
        using var poller = new DeviceMemory.PeakPoller(0, TimeSpan.FromMilliseconds(5));
        Thread.Sleep(20);
        Assert.True(double.IsNaN(poller.PeakMb));
    }
}
