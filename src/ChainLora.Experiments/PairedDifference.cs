// Paired comparisons over seeds. A seed fixes a cell's sample, batch order and first LoRA A, so a
// chain's run and its LoRA's run on the same seed differ only by the method: their difference is the
// unit of evidence. Over n seeds the mean difference gets a Student t interval,
//   mean ± t(0.975, n - 1) * sd / sqrt(n)      (sd: the sample standard deviation, n - 1 in the denominator)
// and a finding is stated only where that interval excludes 0; otherwise "no difference found".
namespace ChainLora.Experiments;

/// <summary>How a paired comparison reads.</summary>
public enum PairedVerdict
{
    /// <summary>The interval covers 0, or there are too few seeds for one.</summary>
    NoDifferenceFound,
    /// <summary>The interval lies wholly on the first method's better side.</summary>
    FirstBetter,
    /// <summary>The interval lies wholly on the second method's better side.</summary>
    SecondBetter,
}

/// <summary>
/// Per-seed differences first - second of a score that is better when higher (accuracy, F1, or minus
/// the NLL), seeds in ascending order; the mean with its 95% t interval.
/// </summary>
public sealed record PairedDifference(IReadOnlyList<long> Seeds, IReadOnlyList<double> Differences)
{
    public const double Confidence = 0.95;

    public int Count => Differences.Count;
    public double Mean => Differences.Average();
    /// <summary>Sample standard deviation (n - 1); 0 for one seed.</summary>
    public double StandardDeviation => Count < 2 ? 0 : Math.Sqrt(Differences.Sum(d => (d - Mean) * (d - Mean)) / (Count - 1));
    /// <summary>Whether every seed gave a finite difference (a diverged run scores minus infinity).</summary>
    public bool Finite => Differences.All(double.IsFinite);
    /// <summary>t(0.975, n - 1) sd / sqrt(n); NaN with fewer than 2 seeds or a non-finite difference.</summary>
    public double HalfWidth => Count < 2 || !Finite ? double.NaN
        : StudentT.Quantile(0.5 + Confidence / 2, Count - 1) * StandardDeviation / Math.Sqrt(Count);
    public double Low => Mean - HalfWidth;
    public double High => Mean + HalfWidth;

    public PairedVerdict Verdict => double.IsNaN(HalfWidth) ? PairedVerdict.NoDifferenceFound
        : Low > 0 ? PairedVerdict.FirstBetter
        : High < 0 ? PairedVerdict.SecondBetter
        : PairedVerdict.NoDifferenceFound;

    /// <summary>
    /// The comparison in words: "<paramref name="first"/> better", "<paramref name="second"/> better" or
    /// "no difference found" (the interval covers 0), with the reason when there is no interval.
    /// </summary>
    public string Finding(string first, string second) => Verdict switch
    {
        PairedVerdict.FirstBetter => $"{first} better",
        PairedVerdict.SecondBetter => $"{second} better",
        _ when Count < 2 => $"no difference found ({Count} seed{(Count == 1 ? "" : "s")}: no interval)",
        _ when !Finite => "no difference found (a run diverged)",
        _ => "no difference found",
    };

    /// <summary>
    /// The runs of <paramref name="first"/> and <paramref name="second"/> paired by seed (seeds both have),
    /// on test or on dev (<paramref name="dev"/>; a seed without a dev score is left out).
    /// </summary>
    public static PairedDifference Of(IReadOnlyList<JobResult> first, IReadOnlyList<JobResult> second, bool dev = false)
    {
        static Dictionary<long, double> BySeed(IReadOnlyList<JobResult> runs, bool dev) => runs
            .Where(r => !dev || r.Dev is not null)
            .GroupBy(r => r.Spec.Seed).ToDictionary(g => g.Key, g => dev ? g.First().Dev!.Value : g.First().Test);
        var (a, b) = (BySeed(first, dev), BySeed(second, dev));
        var seeds = a.Keys.Where(b.ContainsKey).Order().ToList();
        return new PairedDifference(seeds, seeds.Select(s => a[s] - b[s]).ToList());
    }
}

/// <summary>Student's t distribution: the CDF through the regularized incomplete beta function, and its quantile.</summary>
public static class StudentT
{
    /// <summary>P(T &lt;= <paramref name="t"/>) for <paramref name="degrees"/> degrees of freedom.</summary>
    public static double Cdf(double t, int degrees)
    {
        if (degrees < 1) throw new ArgumentOutOfRangeException(nameof(degrees), $"degrees of freedom {degrees}: must be at least 1");
        if (double.IsNaN(t)) return double.NaN;
        // P(|T| > |t|) = I_x(nu/2, 1/2) with x = nu / (nu + t^2).
        var tail = 0.5 * RegularizedBeta(degrees / (degrees + t * t), degrees / 2.0, 0.5);
        return t > 0 ? 1 - tail : tail;
    }

    /// <summary>The t with P(T &lt;= t) = <paramref name="p"/>, by bisection to machine precision.</summary>
    public static double Quantile(double p, int degrees)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), $"probability {p}: must be in (0, 1)");
        if (p < 0.5) return -Quantile(1 - p, degrees);
        double low = 0, high = 1;
        while (Cdf(high, degrees) < p) (low, high) = (high, 2 * high);
        for (var i = 0; i < 200 && high - low > 1e-15 * high; i++)
        {
            var mid = 0.5 * (low + high);
            if (Cdf(mid, degrees) < p) low = mid;
            else high = mid;
        }
        return 0.5 * (low + high);
    }

    /// <summary>I_x(a, b) by the continued fraction of Numerical Recipes (betai / betacf), on the side where it converges.</summary>
    static double RegularizedBeta(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        var front = Math.Exp(LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x));
        return x < (a + 1) / (a + b + 2)
            ? front * ContinuedFraction(x, a, b) / a
            : 1 - front * ContinuedFraction(1 - x, b, a) / b;
    }

    static double ContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double c = 1, d = 1 - (a + b) * x / (a + 1);
        d = 1 / (Math.Abs(d) < tiny ? tiny : d);
        var h = d;
        for (var m = 1; m <= 500; m++)
        {
            foreach (var numerator in new[] { m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)) })
            {
                d = 1 + numerator * d;
                d = 1 / (Math.Abs(d) < tiny ? tiny : d);
                c = 1 + numerator / c;
                if (Math.Abs(c) < tiny) c = tiny;
                h *= d * c;
            }
            if (Math.Abs(d * c - 1) < 1e-16) break;
        }
        return h;
    }

    /// <summary>ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits).</summary>
    static double LogGamma(double x)
    {
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        var sum = g[0];
        for (var i = 1; i < g.Length; i++) sum += g[i] / (x + i);
        var t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
