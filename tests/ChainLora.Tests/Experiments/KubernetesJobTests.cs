using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.Experiments;
using Json.Schema;
using YamlDotNet.Serialization;

namespace ChainLora.Tests.Experiments;

/// <summary>
/// `experiment --scheduler k8s`: the Indexed Job manifest parses as YAML, satisfies a schema of the
/// batch/v1 Job fields it uses (no cluster needed), and its pods' shell line picks spec i for index i.
/// </summary>
public sealed class KubernetesJobTests : TempFolderTest
{
    const string JobSchema = """
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": false,
      "$defs": { "dns1123": { "type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" } },
      "properties": {
        "apiVersion": { "const": "batch/v1" },
        "kind": { "const": "Job" },
        "metadata": { "type": "object", "required": ["name"], "properties": { "name": { "$ref": "#/$defs/dns1123" }, "labels": { "type": "object" } } },
        "spec": {
          "type": "object", "required": ["completionMode", "completions", "template"], "additionalProperties": false,
          "properties": {
            "completionMode": { "enum": ["Indexed", "NonIndexed"] },
            "completions": { "type": "integer", "minimum": 1 },
            "parallelism": { "type": "integer", "minimum": 1 },
            "backoffLimit": { "type": "integer", "minimum": 0 },
            "template": {
              "type": "object", "required": ["spec"],
              "properties": { "spec": {
                "type": "object", "required": ["containers", "restartPolicy"],
                "properties": {
                  "restartPolicy": { "enum": ["Never", "OnFailure"] },
                  "containers": { "type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name", "image"], "additionalProperties": false,
                    "properties": {
                      "name": { "$ref": "#/$defs/dns1123" },
                      "image": { "type": "string", "minLength": 1 },
                      "command": { "type": "array", "items": { "type": "string" } },
                      "env": { "type": "array", "items": { "type": "object", "required": ["name", "value"], "additionalProperties": false,
                        "properties": { "name": { "type": "string" }, "value": { "type": "string" } } } },
                      "resources": { "type": "object", "properties": { "requests": { "type": "object", "additionalProperties": { "type": "string" } } } },
                      "volumeMounts": { "type": "array", "items": { "type": "object", "required": ["name", "mountPath"],
                        "properties": { "name": { "type": "string" }, "mountPath": { "type": "string", "pattern": "^/" } } } }
                    } } },
                  "volumes": { "type": "array", "items": { "type": "object", "required": ["name"],
                    "properties": { "name": { "$ref": "#/$defs/dns1123" },
                      "persistentVolumeClaim": { "type": "object", "required": ["claimName"], "properties": { "claimName": { "$ref": "#/$defs/dns1123" } } } } } }
                } } }
            }
          }
        }
      }
    }
    """;

    static JsonNode? Yaml(string text)
    {
        var value = new DeserializerBuilder().WithAttemptingUnquotedStringTypeDeserialization().Build().Deserialize<object>(text);
        return JsonSerializer.SerializeToNode(value);
    }

    [Fact]
    public void The_manifest_is_an_indexed_job_whose_pod_i_runs_spec_i()
    {
        var grid = PathIn("grid");
        var jobs = Enumerable.Range(0, 3).Select(i => new JobSpec
        {
            Options = new()
            {
                Task = "sst2", Data = "/d", Model = "/m", Seed = i, Sizes = new(8, 2, 4), BatchSize = 4,
                Trainer = new() { LearningRate = 1e-3, Epochs = 1 },
            },
            Method = "LoRA", Kind = MethodKind.Lora, Out = Path.Combine(grid, "jobs", $"cell-{i}"),
        }).ToList();
        var manifest = KubernetesJob.Write(grid, jobs, new KubernetesOptions { CpusPerTask = 2, Memory = "4Gi", MaxParallel = 2, Image = "registry.example/chainlora:1.0" });

        var job = Yaml(File.ReadAllText(manifest))!;
        var results = JsonSchema.FromText(JobSchema).Evaluate(JsonDocument.Parse(job.ToJsonString()).RootElement,
            new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(results.IsValid, string.Join("; ", (results.Details ?? []).Where(d => d.Errors is not null)
            .Select(d => $"{d.InstanceLocation}: {string.Join(", ", d.Errors!.Values)}")));
        Assert.Equal(3, (int)job["spec"]!["completions"]!);
        Assert.Equal(2, (int)job["spec"]!["parallelism"]!);
        var pod = job["spec"]!["template"]!["spec"]!;
        Assert.Equal((string)pod["volumes"]![0]!["name"]!, (string)pod["containers"]![0]!["volumeMounts"]![0]!["name"]!);
        Assert.Equal(Path.GetFullPath(grid), (string)pod["containers"]![0]!["volumeMounts"]![0]!["mountPath"]!);

        // The pod's shell line, with chainlora replaced by echo: index 1 runs the second spec.
        var line = ((string)pod["containers"]![0]!["command"]![2]!).Replace("exec chainlora run-job", "echo", StringComparison.Ordinal);
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(line);
        info.Environment["JOB_COMPLETION_INDEX"] = "1";
        using var process = Process.Start(info)!;
        Assert.Equal(Path.Combine(jobs[1].Out, "spec.json"), process.StandardOutput.ReadToEnd().Trim());
        process.WaitForExit();
    }

    [Fact]
    public void A_broken_manifest_fails_the_schema()
    {
        var broken = Yaml("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: Not_A_Name\nspec:\n  completionMode: Sometimes\n  completions: 0\n  template:\n    spec:\n      restartPolicy: Always\n      containers: []\n")!;
        var results = JsonSchema.FromText(JobSchema).Evaluate(JsonDocument.Parse(broken.ToJsonString()).RootElement);
        Assert.False(results.IsValid);
    }
}
