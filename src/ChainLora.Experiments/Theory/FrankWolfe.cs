// Algorithm 2 of the paper ("Idealized COLA"): Frank-Wolfe over the trace-norm ball, and the bound
// of Theorem 4.1, on problems where every quantity in the theorem can be computed.
//
//   K        = { W in R^(m x n) : ||W||_* <= tau }, tau = the nuclear norm of the low-rank target
//   oracle   V_t = -tau u v^T for the top singular pair (u, v) of the gradient: exact (SVD) or
//            approximate (k power iterations); its error eps_t = <V_t, G> - min_{V in K} <V, G>
//            = tau sigma_1(G) + <V_t, G> >= 0 is measured against the exact SVD and reported
//   eps      a priori, from the tolerance the oracle states before the run: u^T G v >= (1 - delta)
//            sigma_1(G) at every call gives eps_t <= delta tau sigma_1(G) <= delta tau Gamma, with
//            Gamma a bound on ||grad L||_2 over K (completion sqrt(2M), robust sqrt(|Omega| / 2)).
//            The bound is checked with this eps, never with the measured one: an oracle that breaks
//            its promise (a wrong sign, a random pair) then fails the check instead of widening it
//   step     W_{t+1} = W_t + eta (V_t - W_t), W_1 = 0, eta = sqrt(M) / (D sqrt(beta T))
//   gap      g_t = max_{V in K} <grad L(W_t), W_t - V> = <G, W_t> + tau sigma_1(G)  (>= 0, zero
//            exactly at stationary points of L over K)
//   bound    (1/T) sum g_t <= 2 sqrt(M beta) D / sqrt(T) + eps
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
    /// <summary>
    /// The power iteration's tolerance is a probabilistic one: it holds on all T calls with probability at
    /// least 1 - this (<see cref="PowerIterationOracle"/>).
    /// </summary>
    public double OracleFailure { get; init; } = 0.01;
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
        if (!(OracleFailure > 0 && OracleFailure < 1)) throw new ArgumentException($"oracle failure probability {OracleFailure}: must be in (0, 1)");
        if (!(StepScale > 0) || double.IsInfinity(StepScale)) throw new ArgumentException($"step scale {StepScale}: must be a positive number");
        return this;
    }
}

/// <summary>Iteration t (1-based): the loss at W_t, the gap g_t, the running mean of g_1..g_t, rank(W_t), the oracle's error.</summary>
public sealed record FrankWolfeStep(int T, double Loss, double Gap, double AverageGap, int Rank, double OracleError);

/// <summary>
/// The run and the quantities of Theorem 4.1. <c>Epsilon</c> is the a priori oracle error (the oracle's
/// stated <c>OracleTolerance</c> times tau Gamma) and <c>Bound</c> uses it; <c>BoundHolds</c> is
/// AverageGap &lt;= Bound. <c>MeasuredEpsilon</c> is the largest error the oracle actually made, and
/// <c>OracleWithinTolerance</c> whether it stayed within Epsilon (the theorem's premise).
/// </summary>
public sealed record FrankWolfeResult(FrankWolfeProblem Problem, int Iterations, double Radius, double Beta, double M, double D,
    double Eta, bool EtaCapped, double Epsilon, double Bound, double AverageGap, bool BoundHolds, int FinalRank, double InitialLoss,
    double FinalLoss, IReadOnlyList<FrankWolfeStep> Steps, string Oracle, double OracleTolerance, double GradientBound, double MeasuredEpsilon,
    bool OracleWithinTolerance);

/// <summary>
/// Algorithm 2's linear minimisation oracle over the trace-norm ball: a unit pair (u, v) for the vertex
/// -tau u v^T, and the relative tolerance delta it promises before the run: u^T G v &gt;= (1 - delta) sigma_1(G).
/// </summary>
public interface IRankOneOracle
{
    string Name { get; }
    /// <summary>delta for a run of <paramref name="iterations"/> calls on gradients of <paramref name="columns"/> columns.</summary>
    double Tolerance(int columns, int iterations);
    /// <summary>u (m) and v (n), unit fp64 vectors, for the gradient (m, n).</summary>
    (Tensor U, Tensor V) Pair(Tensor gradient, Generator generator);
}

/// <summary>The top singular pair by SVD: delta = 0.</summary>
public sealed class ExactOracle : IRankOneOracle
{
    public string Name => "exact SVD";
    public double Tolerance(int columns, int iterations) => 0;

    public (Tensor U, Tensor V) Pair(Tensor gradient, Generator generator)
    {
        var (u, _, vh) = linalg.svd(gradient, fullMatrices: false);
        return (u[.., 0], vh[0]);
    }
}

/// <summary>
/// k power iterations on G^T G from a uniformly random start. Its tolerance follows Kuczynski and
/// Wozniakowski (SIAM J. Matrix Anal. Appl. 13, 1992): after k products with an n x n positive
/// semi-definite matrix the Rayleigh quotient falls below (1 - e) lambda_1 with probability at most
/// 0.824 sqrt(n) (1 - e)^(k - 1/2); the weaker sqrt(n) (1 - e)^(k - 1) is used here. The returned
/// u^T G v is at least the square root of that quotient, so delta = 1 - sqrt(1 - e), with e set so
/// the failure probability over all T calls is at most p (p / T per call). Few iterations promise
/// nothing (delta = 1: u^T G v &gt;= 0 still holds).
/// </summary>
public sealed class PowerIterationOracle(int iterations, double failure) : IRankOneOracle
{
    public string Name => $"{iterations} power iteration{(iterations == 1 ? "" : "s")}";

    public double Tolerance(int columns, int calls)
    {
        if (iterations < 2) return 1;
        var e = 1 - Math.Pow(failure / calls / Math.Sqrt(columns), 1.0 / (iterations - 1));
        return e >= 1 ? 1 : 1 - Math.Sqrt(1 - e);
    }

    public (Tensor U, Tensor V) Pair(Tensor g, Generator generator)
    {
        var v = randn([g.shape[1]], ScalarType.Float64, generator: generator);
        v.div_(v.norm());
        var u = g.matmul(v);
        for (var i = 0; i < iterations; i++)
        {
            u = g.matmul(v);
            u.div_(u.norm().clamp_min(1e-300));
            v = g.t().matmul(u);
            v.div_(v.norm().clamp_min(1e-300));
        }
        return (u, v);
    }
}

public static class FrankWolfe
{
    /// <summary>Runs Algorithm 2 with the options' oracle, or with <paramref name="oracle"/> (tests pass broken ones).</summary>
    public static FrankWolfeResult Run(FrankWolfeOptions options, IRankOneOracle? oracle = null)
    {
        options.Validate();
        oracle ??= options.PowerIterations == 0 ? new ExactOracle() : new PowerIterationOracle(options.PowerIterations, options.OracleFailure);
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
        // ||grad L||_2 <= ||grad L||_F on K: completion ||P(W - Y)||_F = sqrt(2 L) <= sqrt(2 M); robust |phi'(r)| <= 1/sqrt(2) per entry.
        var gradientBound = options.Problem == FrankWolfeProblem.Completion
            ? Math.Sqrt(2 * bound)
            : Math.Sqrt(mask.sum().item<double>() / 2);
        var tolerance = oracle.Tolerance(n, T);
        var epsilon = tolerance * tau * gradientBound;
        var eta = Math.Min(1, options.StepScale * etaTheorem);

        var w = zeros([m, n], ScalarType.Float64);
        var steps = new List<FrankWolfeStep>(T);
        double gapSum = 0, measured = 0;
        for (var t = 1; t <= T; t++)
        {
            using var inner = NewDisposeScope();
            var (loss, gradient) = LossAndGradient(options.Problem, w, target, mask);
            var sigma = linalg.svdvals(gradient)[0].item<double>();
            var gap = Math.Max(0, gradient.mul(w).sum().item<double>() + tau * sigma);
            var (left, right) = oracle.Pair(gradient, generator);
            var vertex = outer(left, right).mul_(-tau);
            var error = Math.Max(0, tau * sigma + vertex.mul(gradient).sum().item<double>());
            measured = Math.Max(measured, error);
            gapSum += gap;
            steps.Add(new FrankWolfeStep(t, loss, gap, gapSum / t, NumericalRank(w, tau), error));
            w.mul_(1 - eta).add_(vertex.mul_(eta));
        }
        var finalLoss = LossAndGradient(options.Problem, w, target, mask).Loss;
        var theorem = 2 * Math.Sqrt(bound * beta) * d / Math.Sqrt(T) + epsilon;
        // The exact oracle's measured error is rounding (about 1e-13 tau sigma_1); the slack keeps it within its tolerance of 0.
        var within = measured <= epsilon + 1e-9 * tau * gradientBound;
        return new FrankWolfeResult(options.Problem, T, tau, beta, bound, d, eta, options.StepScale * etaTheorem > 1, epsilon, theorem,
            gapSum / T, gapSum / T <= theorem, NumericalRank(w, tau), steps[0].Loss, finalLoss, steps, oracle.Name, tolerance, gradientBound,
            measured, within);
    }

    /// <summary>L(W) and its gradient (m, n) fp64.</summary>
    static (double Loss, Tensor Gradient) LossAndGradient(FrankWolfeProblem problem, Tensor w, Tensor target, Tensor mask)
    {
        var r = w.sub(target).mul_(mask);
        if (problem == FrankWolfeProblem.Completion) return (0.5 * r.pow(2).sum().item<double>(), r);
        var denominator = r.pow(2).div_(2).add_(1);
        return (denominator.log().sum().item<double>(), r.div(denominator));
    }

    /// <summary>Singular values above 1e-9 tau (W_1 = 0 has rank 0; each step adds at most one).</summary>
    static int NumericalRank(Tensor w, double tau) => (int)linalg.svdvals(w).gt(1e-9 * tau).sum().item<long>();
}
