using System.IO.Compression;
using System.Xml.Linq;

namespace ChainLora.Tests.Packaging;

/// <summary>
/// ChainLora installed the way .NET software is: the three packages (the lean core ChainLora,
/// ChainLora.Experiments on top of it, and the tool) packed into a local feed, the tool
/// installed from it and run through its `chainlora` shim, and a fresh console project built
/// against the library package running the README's library example (docs/examples/ChainOfLora.cs).
/// </summary>
public sealed class PackageTests : TempFolderTest
{
    static string Repository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ChainLora.slnx"))) return dir.FullName;
        Assert.Skip("the repository (ChainLora.slnx) is not above the test binaries");
        return "";
    }

    static readonly Dictionary<string, string> Quiet = new()
    {
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1", ["CHAINLORA_THREADS"] = "1",
    };

    static (int Exit, string Output) Run(string file, string? workingDirectory, params string[] args)
    {
        var (exit, output, error) = ChildProcess.Run(file, args, workingDirectory, Quiet, TimeSpan.FromMinutes(8));
        return (exit, output + error);
    }

    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";

    static XElement Nuspec(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        using var stream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XElement.Load(stream).Elements().Single(e => e.Name.LocalName == "metadata");
    }

    /// <summary>The package ids a package depends on, sorted.</summary>
    static List<string> Dependencies(string nupkg) =>
        Nuspec(nupkg).Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => (string)e.Attribute("id")!).Distinct().Order(StringComparer.Ordinal).ToList();

    [Fact]
    public void The_tool_and_the_library_install_from_packages_and_run()
    {
        var repo = Repository();
        var model = SharedData.Require("models/stories260K");
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var feed = PathIn("feed");
        foreach (var project in new[] { "src/ChainLora", "src/ChainLora.Experiments", "src/ChainLora.Cli" })
        {
            var (exit, output) = Run(Dotnet, repo, "pack", project, "-c", "Release", "-o", feed, "-v", "q");
            Assert.True(exit == 0, output);
        }

        foreach (var id in new[] { "ChainLora", "ChainLora.Experiments", "ChainLora.Tool" })
        {
            var nupkg = Path.Combine(feed, $"{id}.0.1.0.nupkg");
            Assert.True(File.Exists(Path.ChangeExtension(nupkg, ".snupkg")), $"{id}: no symbols package");
            var meta = Nuspec(nupkg);
            string? Field(string name) => meta.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
            Assert.Equal(id, Field("id"));
            Assert.False(string.IsNullOrWhiteSpace(Field("description")));
            Assert.Equal("MIT", Field("license"));
            Assert.Contains("lora", Field("tags"));
            Assert.Equal("README.md", Field("readme"));
            Assert.NotNull(meta.Elements().Single(e => e.Name.LocalName == "repository").Attribute("url"));
            using var zip = ZipFile.OpenRead(nupkg);
            Assert.Contains(zip.Entries, e => e.FullName == "README.md");
        }

        // The core package depends on no plotting or cluster package; the experiments package brings the plots.
        Assert.Equal(["Microsoft.ML.Tokenizers", "ParquetSharp", "TorchSharp-cpu"], Dependencies(Path.Combine(feed, "ChainLora.0.1.0.nupkg")));
        Assert.Equal(["ChainLora", "ScottPlot"], Dependencies(Path.Combine(feed, "ChainLora.Experiments.0.1.0.nupkg")));

        // The tool, through the shim users type.
        var tools = PathIn("tools");
        var (code, log) = Run(Dotnet, null, "tool", "install", "ChainLora.Tool", "--version", "0.1.0", "--tool-path", tools, "--add-source", feed);
        Assert.True(code == 0, log);
        var chainlora = Path.Combine(tools, "chainlora");
        (code, log) = Run(chainlora, null, "--help");
        Assert.True(code == 0, log);
        Assert.Contains("chainlora [command] [options]", log);
        Assert.DoesNotContain("ChainLora.Cli", log);
        (code, log) = Run(chainlora, null, "demo", "--steps", "20", "--json");
        Assert.True(code == 0, log);
        Assert.Contains("\"method\":\"COLA", log);

        // A fresh console project on the library package, running the README's example file unchanged.
        var app = PathIn("app");
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "app.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <PlatformTarget>x64</PlatformTarget>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ChainLora" Version="0.1.0" />
              </ItemGroup>
            </Project>
            """);
        // Outside the repository: its Directory.Build.props and central package versions must not apply.
        File.WriteAllText(Path.Combine(app, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(app, "Directory.Packages.props"), "<Project />");
        var example = File.ReadAllText(Path.Combine(repo, "docs", "examples", "ChainOfLora.cs"));
        Assert.Contains("```csharp\n" + example + "```", File.ReadAllText(Path.Combine(repo, "README.md")));
        File.WriteAllText(Path.Combine(app, "Program.cs"), example);
        (code, log) = Run(Dotnet, app, "run", "-c", "Release", "--", model, text);
        Assert.True(code == 0, log);
        Assert.Contains("link 2: rank 4", log);
        Assert.Matches(@"test NLL per token \d+\.\d{4}", log);
        Assert.True(File.Exists(Path.Combine(app, "runs", "lm-cola", "result.json")));
    }
}
