// What training allocates beyond the loaded model, counted before it is allocated so the memory
// budget (Runtime/MemoryBudget) can refuse it: the trainable tensors, their gradients and their
// optimizer state, and for a chain the tied links kept for export. All of it is fp32: LoRA's A and
// B are fp32 whatever the base dtype (LoraLinear), full fine-tuning needs fp32 weights, and
// gradients and optimizer state take their parameter's dtype.
namespace ChainLora.Training;

public static class TrainingMemory
{
    /// <summary>
    /// Tensors of optimizer state per trainable tensor, each its parameter's size: AdamW's two
    /// moments (no AMSGrad), SGD's momentum buffer when momentum is on, AdaGrad's sum of squares.
    /// </summary>
    public static int StateTensors(TrainerOptions options) => options.Optimizer switch
    {
        OptimizerKind.AdamW => 2,
        OptimizerKind.Sgd => options.Momentum > 0 ? 1 : 0,
        OptimizerKind.AdaGrad => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "unknown optimizer"),
    };

    /// <summary>
    /// Peak bytes of a LoRA / COLA chain whose links have <paramref name="ranks"/>, on layers with
    /// <paramref name="elementsPerRank"/> elements of A and B per unit of rank and
    /// <paramref name="biasElements"/> trainable bias elements (already part of the model). While
    /// link k trains, it holds its A and B, their gradients and <paramref name="stateTensors"/>
    /// optimizer tensors each, the biases' gradients and state, and links 0..k-1 tied and kept as
    /// CPU copies of A and B. <paramref name="adaptersOnHost"/> false (a GPU) counts only those copies.
    /// </summary>
    public static long LoraBytes(long elementsPerRank, long biasElements, IEnumerable<int> ranks, int stateTensors, bool adaptersOnHost)
    {
        double tied = 0, peak = 0;
        foreach (var rank in ranks)
        {
            var live = (double)rank * elementsPerRank * (2 + stateTensors) + (double)biasElements * (1 + stateTensors);
            peak = Math.Max(peak, tied + (adaptersOnHost ? live : 0));
            tied += (double)rank * elementsPerRank;
        }
        return Bytes(peak);
    }

    /// <summary>Bytes full fine-tuning adds to a model of <paramref name="parameters"/> fp32 elements: gradients and optimizer state.</summary>
    public static long FullBytes(long parameters, int stateTensors) => Bytes((double)parameters * (1 + stateTensors));

    // In double so that a rank near int.MaxValue cannot overflow; clamped, which the budget refuses anyway.
    static long Bytes(double elements) => (long)Math.Min(long.MaxValue, elements * sizeof(float));
}
