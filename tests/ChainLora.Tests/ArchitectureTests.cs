// The library's layers point one way (docs/ARCHITECTURE.md). Every reference from one ChainLora
// namespace to another (signatures, fields, base types, and the types and members that method bodies
// touch, read from the compiled IL with Mono.Cecil) must follow an arrow of Layers, directly or
// through other arrows. The layers are shipped in two assemblies, the lean core `ChainLora` and
// `ChainLora.Experiments` on top of it; each layer lives in one of them, and each assembly references
// only the packages listed for it (no plotting or cluster manifests in the core).
using Mono.Cecil;

namespace ChainLora.Tests;

public class ArchitectureTests
{
    /// <summary>Each layer and the layers it builds on directly (second segment of the namespace: ChainLora.IO.Hub is IO).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Layers = new Dictionary<string, string[]>
    {
        ["Runtime"] = ["IO"],          // native library loading writes its patched shim atomically
        ["IO"] = ["Runtime"],          // readers make sure libtorch is loaded before the first tensor
        ["Tokenization"] = ["IO", "Runtime"],
        ["Models"] = ["IO", "Runtime"],
        ["Loading"] = ["Models", "Tokenization"],
        ["Lora"] = ["Models"],
        ["Chain"] = ["Lora"],
        ["Training"] = ["Chain"],
        ["Tasks"] = ["Tokenization"],
        ["Evaluation"] = ["Tasks", "Models"],
        ["Objectives"] = ["Training", "Evaluation"],
        ["Export"] = ["Lora", "Loading"],
        ["Recipes"] = ["Objectives", "Export"],
        ["Experiments"] = ["Recipes"],
        ["Demo"] = ["Training"],
        ["Benchmarking"] = ["Training", "Loading"],
        ["Theory"] = ["IO", "Runtime"],
    };

    /// <summary>The assembly each layer ships in.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Assemblies = new Dictionary<string, string[]>
    {
        ["ChainLora"] = ["Runtime", "IO", "Tokenization", "Models", "Loading", "Lora", "Chain", "Training", "Tasks",
            "Evaluation", "Objectives", "Export", "Recipes"],
        ["ChainLora.Experiments"] = ["Experiments", "Demo", "Benchmarking", "Theory"],
    };

    /// <summary>What each assembly may reference besides the .NET runtime's own (System.*, netstandard).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> AllowedReferences = new Dictionary<string, string[]>
    {
        ["ChainLora"] = ["TorchSharp", "Microsoft.ML.Tokenizers", "ParquetSharp", "Apache.Arrow"], // Arrow comes with ParquetSharp
        ["ChainLora.Experiments"] = ["ChainLora", "TorchSharp", "ScottPlot"],
        ["ChainLora.Cli"] = ["ChainLora", "ChainLora.Experiments", "TorchSharp", "Microsoft.ML.Tokenizers", "System.CommandLine", "Spectre.Console", "Spectre.Console.Ansi"],
    };

    static string PathOf(string assembly) => assembly switch
    {
        "ChainLora" => typeof(ChainLora.Training.ChainTrainer).Assembly.Location,
        "ChainLora.Experiments" => typeof(ChainLora.Experiments.Grid).Assembly.Location,
        "ChainLora.Cli" => typeof(ChainLora.Cli.CliApp).Assembly.Location,
        _ => throw new ArgumentException(assembly),
    };

    /// <summary>IO and Runtime form the bottom layer together; no other pair may reach each other.</summary>
    static readonly HashSet<string> BottomLayer = ["IO", "Runtime"];

    static HashSet<string> Reachable(string layer)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>(Layers[layer]);
        while (stack.TryPop(out var next))
            if (seen.Add(next))
                foreach (var below in Layers[next]) stack.Push(below);
        seen.Remove(layer);
        return seen;
    }

    static string? LayerOf(TypeReference type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        var parts = type.Namespace.Split('.');
        return parts.Length >= 2 && parts[0] == "ChainLora" ? parts[1] : null;
    }

    /// <summary>(from layer, to layer) -> the types that make the reference, "Type -> Type".</summary>
    static Dictionary<(string From, string To), HashSet<string>> Dependencies(string assemblyPath)
    {
        using var assembly = AssemblyDefinition.ReadAssembly(assemblyPath);
        var found = new Dictionary<(string, string), HashSet<string>>();
        foreach (var type in assembly.MainModule.GetTypes())
        {
            var from = LayerOf(type);
            if (from is null) continue;
            void Add(TypeReference? target)
            {
                switch (target)
                {
                    case null: return;
                    case GenericInstanceType generic:
                        Add(generic.ElementType);
                        foreach (var argument in generic.GenericArguments) Add(argument);
                        return;
                    case TypeSpecification spec:
                        Add(spec.ElementType);
                        return;
                }
                if (LayerOf(target) is { } to && to != from)
                {
                    if (!found.TryGetValue((from, to), out var examples)) found[(from, to)] = examples = [];
                    examples.Add($"{type.FullName} -> {target.FullName}");
                }
            }
            void AddMember(MemberReference member)
            {
                Add(member.DeclaringType);
                switch (member)
                {
                    case MethodReference m:
                        Add(m.ReturnType);
                        foreach (var p in m.Parameters) Add(p.ParameterType);
                        if (m is GenericInstanceMethod gm) foreach (var a in gm.GenericArguments) Add(a);
                        break;
                    case FieldReference f:
                        Add(f.FieldType);
                        break;
                }
            }
            Add(type.BaseType);
            foreach (var i in type.Interfaces) Add(i.InterfaceType);
            foreach (var f in type.Fields) Add(f.FieldType);
            foreach (var p in type.Properties) Add(p.PropertyType);
            foreach (var method in type.Methods)
            {
                AddMember(method);
                if (!method.HasBody) continue;
                foreach (var v in method.Body.Variables) Add(v.VariableType);
                foreach (var instruction in method.Body.Instructions)
                    switch (instruction.Operand)
                    {
                        case TypeReference t: Add(t); break;
                        case MemberReference m: AddMember(m); break;
                    }
            }
        }
        return found;
    }

    [Theory]
    [InlineData("ChainLora")]
    [InlineData("ChainLora.Experiments")]
    public void Every_reference_between_namespaces_follows_a_layer_arrow(string assembly)
    {
        var dependencies = Dependencies(PathOf(assembly));
        var unknown = dependencies.Keys.SelectMany(k => new[] { k.From, k.To }).Distinct().Where(l => !Layers.ContainsKey(l)).ToList();
        Assert.True(unknown.Count == 0, $"namespaces without a layer: {string.Join(", ", unknown)}; add them to {nameof(Layers)} and docs/ARCHITECTURE.md");
        var upward = Against(dependencies);
        Assert.True(upward.Count == 0, "references against the layers:\n" + string.Join("\n", upward));
    }

    [Theory]
    [InlineData("ChainLora")]
    [InlineData("ChainLora.Experiments")]
    public void Each_layer_lives_in_its_own_assembly(string assembly)
    {
        using var definition = AssemblyDefinition.ReadAssembly(PathOf(assembly));
        var strays = definition.MainModule.GetTypes().Select(LayerOf).OfType<string>().Distinct()
            .Where(layer => !Assemblies[assembly].Contains(layer)).ToList();
        Assert.True(strays.Count == 0, $"{assembly} holds namespaces of another assembly: {string.Join(", ", strays)}");
        Assert.Equal(Layers.Keys.Order(), Assemblies.Values.SelectMany(l => l).Order());
    }

    [Theory]
    [InlineData("ChainLora")]
    [InlineData("ChainLora.Experiments")]
    [InlineData("ChainLora.Cli")]
    public void Each_assembly_references_only_its_listed_packages(string assembly)
    {
        var extra = Unlisted(assembly, ReferencesOf(PathOf(assembly)));
        Assert.True(extra.Count == 0, $"{assembly} references {string.Join(", ", extra)}; the core must stay free of plotting and cluster packages");
    }

    static List<string> ReferencesOf(string path)
    {
        using var definition = AssemblyDefinition.ReadAssembly(path);
        return definition.MainModule.AssemblyReferences.Select(r => r.Name).ToList();
    }

    static List<string> Unlisted(string assembly, IEnumerable<string> references) =>
        references.Where(r => r is not ("netstandard" or "mscorlib") && !r.StartsWith("System", StringComparison.Ordinal)
            && !r.StartsWith("Microsoft.Win32", StringComparison.Ordinal) && !AllowedReferences[assembly].Contains(r)).Order().ToList();

    [Fact]
    public void A_plotting_reference_in_the_core_is_caught()
    {
        Assert.Equal(["ScottPlot"], Unlisted("ChainLora", ["System.Runtime", "TorchSharp", "ScottPlot"]));
        Assert.Contains("ScottPlot", ReferencesOf(PathOf("ChainLora.Experiments")));
    }

    static List<string> Against(Dictionary<(string From, string To), HashSet<string>> dependencies) =>
        dependencies.Where(d => !Reachable(d.Key.From).Contains(d.Key.To))
            .Select(d => $"{d.Key.From} -> {d.Key.To} (e.g. {d.Value.Order(StringComparer.Ordinal).First()})").ToList();

    [Fact]
    public void The_layers_form_no_cycle_except_the_bottom_pair()
    {
        foreach (var layer in Layers.Keys)
        {
            var cycle = Reachable(layer).Where(below => Reachable(below).Contains(layer)).ToList();
            Assert.True(cycle.Count == 0 || (BottomLayer.Contains(layer) && cycle.All(BottomLayer.Contains)),
                $"{layer} and {string.Join(", ", cycle)} reach each other");
        }
    }

    [Fact]
    public void An_arrow_running_back_up_is_caught()
    {
        var upward = Against(new() { [("Models", "Training")] = ["a model that knows its trainer"], [("Recipes", "Models")] = ["fine"] });
        Assert.Equal(["Models -> Training (e.g. a model that knows its trainer)"], upward);
        // References made only inside method bodies count: Probe names Recipes nowhere but in its body.
        var ours = Dependencies(typeof(ArchitectureTests).Assembly.Location);
        Assert.Contains(ours[("Tests", "Recipes")], e => e.StartsWith($"{typeof(ArchitectureTests).FullName}/{nameof(Probe)} ", StringComparison.Ordinal));
    }

    static class Probe
    {
        public static string Body() => ChainLora.Recipes.ResultFile.ToJson(1);
    }
}
