// The trained chain inside a run folder, so that `chainlora export --run DIR` can rebuild the model:
//   DIR/chain/chain.json         base model folder, model type, LoRA config, one entry per link
//   DIR/chain/links.safetensors  <module path>.link<i>.A (r, in) and .link<i>.B (out, r), fp32;
//                                trained biases under their parameter names (e.g. "...q_proj.bias")
// The links' factors are kept rather than the trained weights: the model is rebuilt as
// W0 + sum_i s_i B_i A_i from the original pretrained W0, so a bf16 base's rounding never enters.
using System.Text.Json;
using System.Text.RegularExpressions;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Runtime;
using static TorchSharp.torch;

namespace ChainLora.Export;

/// <summary>
/// One link of a saved chain. <see cref="Rank"/> and <see cref="Alpha"/> are null when the link's
/// modules differ in rank (an initial PEFT adapter with rank_pattern). <see cref="Origin"/>:
/// "trained", or "adapter" for the adapter the run started from (its scale folded into B, scaling 1).
/// </summary>
public sealed record SavedLink(int? Rank, double? Alpha, double Scaling, string Origin);

/// <summary>A chain read back from a run folder; owns its tensors (fp32, CPU).</summary>
public sealed class SavedChain(string baseModel, string modelType, LoraConfig lora, IReadOnlyList<SavedLink> links,
    IReadOnlyList<IReadOnlyDictionary<string, LoraFactors>> factors, IReadOnlyDictionary<string, Tensor> biases) : IDisposable
{
    /// <summary>Full path of the pretrained model folder the chain was trained on.</summary>
    public string BaseModel { get; } = baseModel;
    public string ModelType { get; } = modelType;
    /// <summary>The training LoRA config (rank and alpha of the first trained link).</summary>
    public LoraConfig Lora { get; } = lora;
    public IReadOnlyList<SavedLink> Links { get; } = links;
    /// <summary>Per link: module path -> factors.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, LoraFactors>> Factors { get; } = factors;
    /// <summary>Trained biases by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Biases { get; } = biases;

    /// <summary>The whole chain as one PEFT adapter relative to <see cref="BaseModel"/>'s weights (see <see cref="PeftAdapter.FromLinks"/>).</summary>
    public PeftAdapter ToAdapter(CausalLM baseModel)
    {
        if (baseModel.ModelType != ModelType)
            throw new InvalidDataException($"{Path.Combine(BaseModel, "config.json")}: a {baseModel.ModelType} model, but the chain was trained on a {ModelType} model");
        return PeftAdapter.FromLinks(baseModel, Factors, Biases, Lora.Dropout, Lora.UseRsLora);
    }

    public void Dispose()
    {
        foreach (var f in Factors.SelectMany(l => l.Values)) { f.A.Dispose(); f.B.Dispose(); }
        foreach (var b in Biases.Values) b.Dispose();
    }
}

public static partial class RunArtifacts
{
    public const string FolderName = "chain";
    public const string ChainJson = "chain.json";
    public const string LinksFile = "links.safetensors";
    const string FormatTag = "chainlora-chain";
    /// <summary>The chain.json layout this code writes and reads.</summary>
    const int FormatVersion = 1;

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    sealed record ChainFile(string Format, int Version, string BaseModel, string ModelType, LoraFile Lora, List<SavedLink> Links);
    sealed record LoraFile(List<string> TargetModules, string Bias, double Dropout, string Init, bool UseRsLora, int Rank, double Alpha);

    /// <summary>
    /// Writes <paramref name="runDir"/>/chain/ (replacing an earlier one whole): every link of
    /// <paramref name="adapters"/> (tied links, then the current one) and the trained biases.
    /// <paramref name="baseModelDir"/> is the pretrained folder the run loaded. When the run started
    /// from <paramref name="initialAdapter"/> (merged into the weights before training), it is saved
    /// as link 0, so exports stay relative to the pretrained weights.
    /// </summary>
    public static void SaveChain(string runDir, LoraAdapters adapters, string baseModelDir, PeftAdapter? initialAdapter = null)
    {
        if (adapters.Model is not CausalLM model) throw new ArgumentException("the adapters are not on a causal language model");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var links = new List<IReadOnlyDictionary<string, LoraFactors>>();
        var infos = new List<SavedLink>();
        if (initialAdapter is not null)
        {
            links.Add(initialAdapter.Modules.ToDictionary(m => m.Key, m => new LoraFactors(m.Value.A, m.Value.B * m.Value.Scaling, 1.0)));
            var ranks = initialAdapter.Modules.Values.Select(f => f.Rank).Distinct().ToList();
            infos.Add(new SavedLink(ranks.Count == 1 ? ranks[0] : null, ranks.Count == 1 ? ranks[0] : null, 1.0, "adapter"));
        }
        foreach (var link in PeftAdapter.ChainLinks(adapters))
        {
            var f = link.Values.First();
            var alpha = adapters.Config.UseRsLora ? f.Scaling * Math.Sqrt(f.Rank) : f.Scaling * f.Rank;
            links.Add(link);
            infos.Add(new SavedLink(f.Rank, PeftAdapter.Snap(alpha), f.Scaling, "trained"));
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var i = 0; i < links.Count; i++)
            foreach (var (module, f) in links[i])
            {
                tensors[$"{module}.link{i}.A"] = f.A;
                tensors[$"{module}.link{i}.B"] = f.B;
            }
        foreach (var (name, bias) in PeftAdapter.TrainedBiases(adapters, initialAdapter?.Biases.Keys)) tensors[name] = bias;

        var c = adapters.Config;
        var file = new ChainFile(FormatTag, FormatVersion, Path.GetFullPath(baseModelDir), model.ModelType,
            new LoraFile([.. c.TargetModules], EnumNames.Name(c.Bias), c.Dropout,
                c.Init == LoraInit.Gaussian ? "gaussian" : "kaiming", c.UseRsLora, c.Rank, c.Alpha),
            infos);
        ExportDirectory.Write(Path.Combine(runDir, FolderName), overwrite: true, temp =>
        {
            SafeTensors.Save(Path.Combine(temp, LinksFile), tensors);
            File.WriteAllText(Path.Combine(temp, ChainJson), JsonSerializer.Serialize(file, Json));
        });
    }

    [GeneratedRegex(@"^(?<module>.+)\.link(?<i>\d+)\.(?<ab>A|B)$")]
    private static partial Regex LinkKey();

    /// <summary>Reads what <see cref="SaveChain"/> wrote; errors name the file and the key.</summary>
    public static SavedChain LoadChain(string runDir)
    {
        NativeRuntime.Ensure();
        var folder = Path.Combine(runDir, FolderName);
        var jsonPath = Path.Combine(folder, ChainJson);
        if (!File.Exists(jsonPath))
            throw new FileNotFoundException($"{jsonPath} not found: {runDir} holds no saved chain (a LoRA / COLA run of `chainlora train --out` saves one)", jsonPath);
        var file = JsonFile.Read<ChainFile>(jsonPath, Json, "chain file");
        if (file.Format != FormatTag || file.Links is not { Count: > 0 } || file.Links.Contains(null!) || file.Lora is not { TargetModules: not null, Bias: not null, Init: not null }
            || file.BaseModel is null || file.ModelType is null)
            throw new InvalidDataException($"{jsonPath}: not a {FormatTag} file, or fields format, base_model, model_type, lora, links are missing");
        if (file.Version != FormatVersion)
            throw new InvalidDataException($"{jsonPath}: field 'version' = {file.Version}; this ChainLora reads version {FormatVersion}");

        var linksPath = Path.Combine(folder, LinksFile);
        var tensors = SafeTensors.Load(linksPath, castTo: ScalarType.Float32);
        var parts = Enumerable.Range(0, file.Links.Count).Select(_ => new Dictionary<string, (Tensor? A, Tensor? B)>(StringComparer.Ordinal)).ToList();
        var biases = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (key, t) in tensors)
            {
                if (LinkKey().Match(key) is { Success: true } m)
                {
                    var i = int.Parse(m.Groups["i"].Value);
                    if (i >= parts.Count)
                        throw new InvalidDataException($"{linksPath}: tensor '{key}' is of link {i}, but {ChainJson} lists {parts.Count} links");
                    var module = m.Groups["module"].Value;
                    var (a, b) = parts[i].GetValueOrDefault(module);
                    parts[i][module] = m.Groups["ab"].Value == "A" ? (t, b) : (a, t);
                }
                else if (key.EndsWith(".bias", StringComparison.Ordinal)) biases[key] = t;
                else throw new InvalidDataException($"{linksPath}: tensor '{key}' is neither a link factor (<module>.link<i>.A/B) nor a bias");
            }
            var factors = new List<IReadOnlyDictionary<string, LoraFactors>>();
            for (var i = 0; i < parts.Count; i++)
            {
                if (parts[i].Count == 0) throw new InvalidDataException($"{linksPath}: link {i} has no tensors");
                factors.Add(parts[i].ToDictionary(p => p.Key, p =>
                {
                    var (a, b) = p.Value;
                    if (a is null || b is null)
                        throw new InvalidDataException($"{linksPath}: '{p.Key}.link{i}.{(a is null ? "A" : "B")}' is missing");
                    if (a.dim() != 2 || b.dim() != 2 || a.shape[0] != b.shape[1] || (file.Links[i].Rank is { } r && a.shape[0] != r))
                        throw new InvalidDataException($"{linksPath}: '{p.Key}.link{i}.A' [{string.Join(", ", a.shape)}] and .B " +
                            $"[{string.Join(", ", b.shape)}] do not form a rank-{file.Links[i].Rank?.ToString() ?? "r"} pair");
                    return new LoraFactors(a, b, file.Links[i].Scaling);
                }));
            }
            LoraConfig lora;
            try
            {
                lora = new LoraConfig
                {
                    Rank = file.Lora.Rank, Alpha = file.Lora.Alpha, Dropout = file.Lora.Dropout, TargetModules = file.Lora.TargetModules,
                    Bias = LoraConfig.ParseBias(file.Lora.Bias), Init = LoraConfig.ParseInit(file.Lora.Init), UseRsLora = file.Lora.UseRsLora,
                };
                lora.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{jsonPath}: field 'lora': {e.Message}", e);
            }
            return new SavedChain(file.BaseModel, file.ModelType, lora, file.Links, factors, biases);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }
}
