// Algorithm 2 of the paper ("Idealized COLA"): Frank-Wolfe over the trace-norm ball, and the bound
// of Theorem 4.1, on problems where every quantity in the theorem can be computed.
//
//   K        = { W in R^(m x n) : ||W||_* <= tau }, tau = the nuclear norm of the low-rank target
//   oracle   V_t = -tau u v^T for the top singular pair (u, v) of the gradient: exact (SVD) or
//            approximate (k power iterations); its error eps_t = <V_t, G> - min_{V in K} <V, G>
//            = tau sigma_1(G) + <V_t, G> >= 0 is measured against the exact SVD
//   step     W_{t+1} = W_t + eta (V_t - W_t), W_1 = 0, eta = sqrt(M) / (D sqrt(beta T))
//   gap      g_t = max_{V in K} <grad L(W_t), W_t - V> = <G, W_t> + tau sigma_1(G)  (>= 0, zero
//            exactly at stationary points of L over K)
//   bound    (1/T) sum g_t <= 2 sqrt(M beta) D / sqrt(T) + eps, with eps = max_t eps_t
// The problems observe a random fraction Omega of a noisy rank-r matrix Y:
//   completion  L(W) = 1/2 sum_Omega (W - Y)^2                  convex;     beta = 1
//   robust      L(W) = sum_Omega log(1 + (W - Y)^2 / 2)         non-convex; beta = max |phi''| = 1
// beta is the Lipschitz constant of the gradient in the Frobenius norm (both Hessians are diagonal,
// with entries in [-1/8, 1]); D = 2 tau bounds ||W - W'||_F <= ||W||_* + ||W'||_* on K; M bounds L
// on K (L >= 0 and |W_ij| <= sigma_1(W) <= tau): 1/2 (tau + ||P_Omega Y||_F)^2 for completion,
// sum_Omega log(1 + (tau + |Y_ij|)^2 / 2) for robust. With h_t = L(W_t) - min L in [0, M] the
// theorem's telescoping holds.
using ChainLora.Runtime;
using static TorchSharp.torch;

namespace ChainLora.Theory;

public enum FrankWolfeProblem
{
    /// <summary>Least squares on the observed entries (convex).</summary>
    Completion,
    /// <summary>A Cauchy-type robust loss on the observed entries (smooth, non-convex).</summary>
    Robust,
}

public sealed record FrankWolfeOptions
{
    public FrankWolfeProblem Problem { get; init; } = FrankWolfeProblem.Completion;
    /// <summary>T: the theorem's horizon, which also sets the step size.</summary>
    public int Iterations { get; init; } = 200;
    public long Seed { get; init; }
    public int Rows { get; init; } = 40;
    public int Columns { get; init; } = 30;
    public int TargetRank { get; init; } = 3;
    /// <summary>Fraction of the entries observed (Omega).</summary>
    public double Observed { get; init; } = 0.5;
    /// <summary>Standard deviation of the noise added to the rank-r target (entries of the target are about unit size).</summary>
    public double Noise { get; init; } = 0.1;
    /// <summary>0: the exact top singular pair; k > 0: k power iterations from a random start (an approximate oracle).</summary>
    public int PowerIterations { get; init; }
    /// <summary>A multiple of the theorem's step size (1 = Theorem 4.1); eta is capped at 1 as Algorithm 2 requires.</summary>
    public double StepScale { get; init; } = 1;

    public FrankWolfeOptions Validate()
    {
        if (Iterations < 1) throw new ArgumentException($"iterations {Iterations}: must be at least 1");
        if (Rows < 2 || Columns < 2) throw new ArgumentException($"matrix {Rows} x {Columns}: both sides must be at least 2");
        if (TargetRank < 1 || TargetRank > Math.Min(Rows, Columns))
            throw new ArgumentException($"target rank {TargetRank}: must be in [1, {Math.Min(Rows, Columns)}]");
        if (!(Observed > 0 && Observed <= 1)) throw new ArgumentException($"observed fraction {Observed}: must be in (0, 1]");
        if (!(Noise >= 0) || double.IsInfinity(Noise)) throw new ArgumentException($"noise {Noise}: must be a number >= 0");
        if (PowerIterations < 0) throw new ArgumentException($"power iterations {PowerIterations}: must be >= 0 (0 = exact oracle)");
        if (!(StepScale > 0) || double.IsInfinity(StepScale)) throw new ArgumentException($"step scale {StepScale}: must be a positive number");
        return this;
    }
}

/// <summary>Iteration t (1-based): the loss at W_t, the gap g_t, the running mean of g_1..g_t, rank(W_t), the oracle's error.</summary>
public sealed record FrankWolfeStep(int T, double Loss, double Gap, double AverageGap, int Rank, double OracleError);

/// <summary>The run and the quantities of Theorem 4.1; <c>BoundHolds</c> is AverageGap &lt;= Bound.</summary>
public sealed record FrankWolfeResult(FrankWolfeProblem Problem, int Iterations, double Radius, double Beta, double M, double D,
    double Eta, bool EtaCapped, double Epsilon, double Bound, double AverageGap, bool BoundHolds, int FinalRank, double InitialLoss,
    double FinalLoss, IReadOnlyList<FrankWolfeStep> Steps);

public static class FrankWolfe
{
    public static FrankWolfeResult Run(FrankWolfeOptions options)
    {
        options.Validate();
        NativeRuntime.Ensure();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (m, n, T) = (options.Rows, options.Columns, options.Iterations);
        using var generator = new Generator(unchecked((ulong)options.Seed));
        var low = randn([m, options.TargetRank], ScalarType.Float64, generator: generator)
            .matmul(randn([options.TargetRank, n], ScalarType.Float64, generator: generator))
            .div_(Math.Sqrt(options.TargetRank));
        var target = low + randn([m, n], ScalarType.Float64, generator: generator).mul_(options.Noise);
        var mask = rand([m, n], ScalarType.Float64, generator: generator).lt(options.Observed).to(ScalarType.Float64);
        var tau = linalg.svdvals(low).sum().item<double>();

        const double beta = 1;
        var d = 2 * tau;
        var bound = options.Problem == FrankWolfeProblem.Completion
            ? 0.5 * Math.Pow(tau + mask.mul(target).norm().item<double>(), 2)
            : mask.mul(log1p(target.abs().add(tau).pow(2).div(2))).sum().item<double>();
        var etaTheorem = Math.Sqrt(bound) / (d * Math.Sqrt(beta * T));
        var eta = Math.Min(1, options.StepScale * etaTheorem);

        var w = zeros([m, n], ScalarType.Float64);
        var steps = new List<FrankWolfeStep>(T);
        double gapSum = 0, epsilon = 0;
        for (var t = 1; t <= T; t++)
        {
            using var inner = NewDisposeScope();
            var (loss, gradient) = LossAndGradient(options.Problem, w, target, mask);
            var (u, s, vh) = linalg.svd(gradient, fullMatrices: false);
            var sigma = s[0].item<double>();
            var gap = Math.Max(0, gradient.mul(w).sum().item<double>() + tau * sigma);
            var (left, right) = options.PowerIterations == 0
                ? (u[.., 0], vh[0])
                : PowerIteration(gradient, options.PowerIterations, generator);
            var vertex = outer(left, right).mul_(-tau);
            var error = Math.Max(0, tau * sigma + vertex.mul(gradient).sum().item<double>());
            epsilon = Math.Max(epsilon, error);
            gapSum += gap;
            steps.Add(new FrankWolfeStep(t, loss, gap, gapSum / t, NumericalRank(w, tau), error));
            w.mul_(1 - eta).add_(vertex.mul_(eta));
        }
        var finalLoss = LossAndGradient(options.Problem, w, target, mask).Loss;
        var theorem = 2 * Math.Sqrt(bound * beta) * d / Math.Sqrt(T) + epsilon;
        return new FrankWolfeResult(options.Problem, T, tau, beta, bound, d, eta, options.StepScale * etaTheorem > 1, epsilon, theorem,
            gapSum / T, gapSum / T <= theorem, NumericalRank(w, tau), steps[0].Loss, finalLoss, steps);
    }

    /// <summary>L(W) and its gradient (m, n) fp64.</summary>
    static (double Loss, Tensor Gradient) LossAndGradient(FrankWolfeProblem problem, Tensor w, Tensor target, Tensor mask)
    {
        var r = w.sub(target).mul_(mask);
        if (problem == FrankWolfeProblem.Completion) return (0.5 * r.pow(2).sum().item<double>(), r);
        var denominator = r.pow(2).div_(2).add_(1);
        return (denominator.log().sum().item<double>(), r.div(denominator));
    }

    /// <summary>The top singular pair of <paramref name="g"/> by <paramref name="k"/> power iterations from a random start.</summary>
    static (Tensor U, Tensor V) PowerIteration(Tensor g, int k, Generator generator)
    {
        var v = randn([g.shape[1]], ScalarType.Float64, generator: generator);
        v.div_(v.norm());
        var u = g.matmul(v);
        for (var i = 0; i < k; i++)
        {
            u = g.matmul(v);
            u.div_(u.norm().clamp_min(1e-300));
            v = g.t().matmul(u);
            v.div_(v.norm().clamp_min(1e-300));
        }
        return (u, v);
    }

    /// <summary>Singular values above 1e-9 tau (W_1 = 0 has rank 0; each step adds at most one).</summary>
    static int NumericalRank(Tensor w, double tau) => (int)linalg.svdvals(w).gt(1e-9 * tau).sum().item<long>();
}
