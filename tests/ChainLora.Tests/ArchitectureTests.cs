// The library's layers point one way (docs/ARCHITECTURE.md). Every reference from one ChainLora
// namespace to another (signatures, fields, base types, and the types and members that method bodies
// touch, read from the compiled IL with Mono.Cecil) must follow an arrow of Layers, directly or
// through other arrows.
using Mono.Cecil;
using Mono.Cecil.Cil;

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

    [Fact]
    public void Every_reference_between_namespaces_follows_a_layer_arrow()
    {
        var dependencies = Dependencies(typeof(ChainLora.Training.ChainTrainer).Assembly.Location);
        var unknown = dependencies.Keys.SelectMany(k => new[] { k.From, k.To }).Distinct().Where(l => !Layers.ContainsKey(l)).ToList();
        Assert.True(unknown.Count == 0, $"namespaces without a layer: {string.Join(", ", unknown)}; add them to {nameof(Layers)} and docs/ARCHITECTURE.md");
        var upward = Against(dependencies);
        Assert.True(upward.Count == 0, "references against the layers:\n" + string.Join("\n", upward));
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
