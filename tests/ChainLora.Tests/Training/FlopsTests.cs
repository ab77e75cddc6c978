using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;

namespace ChainLora.Tests.Training;

public class FlopsTests
{
    [Fact]
    public void Lora_training_flops_match_a_hand_count()
    {
        // Tiny Llama: hidden 32, intermediate 48, 2 layers, 4 heads (hd 8), 2 KV heads, vocab 64, untied head.
        using var model = new LlamaForCausalLM(TinyModels.LlamaConfig);
        LoraAdapters.Inject(model, new LoraConfig { Rank = 2 });
        const int t = 10;
        // Per layer dense matmuls (in*out): q 32*32, k 32*16, v 32*16, o 32*32, gate/up/down 32*48 each.
        double perLayer = 32 * 32 + 32 * 16 + 32 * 16 + 32 * 32 + 3 * 32 * 48;
        double dense = 2 * (2 * perLayer + 32 * 64);               // two layers + lm_head, 2 FLOPs per MAC
        double lora = 2 * (2 * 2 * (32 + 32) + 2 * 2 * (32 + 16)); // per layer q: r(in+out), v: r(in+out); two layers
        double attention = 2 * (2 * 2 * t * 32);                    // per layer QK^T and AV over width 32
        var count = Flops.PerToken(model, t);
        Assert.Equal(dense + lora + attention, count.Forward, 6);
        Assert.Equal(dense + lora + 2 * attention, count.BackwardInput, 6);
        Assert.Equal(lora, count.BackwardWeight, 6); // only A and B get weight gradients
    }

    [Fact]
    public void Full_fine_tuning_adds_every_weight_gradient_and_a_tied_head()
    {
        using var model = new LlamaForCausalLM(TinyModels.LlamaConfig with { TieWordEmbeddings = true });
        foreach (var p in model.parameters()) p.requires_grad = true;
        double perLayer = 32 * 32 + 32 * 16 + 32 * 16 + 32 * 32 + 3 * 32 * 48;
        var count = Flops.PerToken(model, 4);
        Assert.Equal(2 * (2 * perLayer + 32 * 64), count.BackwardWeight, 6);
    }
}
