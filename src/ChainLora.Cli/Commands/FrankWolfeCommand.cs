using System.CommandLine;
using ChainLora.IO;
using ChainLora.Theory;

namespace ChainLora.Cli.Commands;

static class FrankWolfeCommand
{
    public static Command Create(TextWriter output)
    {
        var defaults = new FrankWolfeOptions();
        var problem = CommonOptions.Choice("--problem",
            "Loss over the observed entries of a noisy low-rank matrix (completion: least squares, convex; robust: log(1 + r^2/2), non-convex)",
            defaults.Problem);
        var iterations = new Option<int>("--iterations") { Description = "T, the horizon (it also sets the step size)", DefaultValueFactory = _ => defaults.Iterations }
            .AtLeast(1);
        var seed = CommonOptions.Seed();
        var power = new Option<int>("--power-iterations")
        {
            Description = "Linear minimisation oracle: 0 = exact top singular pair; k = k power iterations (their stated tolerance sets epsilon; the error made is measured beside it)",
            DefaultValueFactory = _ => defaults.PowerIterations,
        }.AtLeast(0);
        var failure = new Option<double>("--oracle-failure")
        {
            Description = "Power iterations: the probability, over the whole run, that their stated tolerance fails",
            DefaultValueFactory = _ => defaults.OracleFailure,
        }.Must(v => v is > 0 and < 1, "in (0, 1)");
        var stepScale = new Option<double>("--step-scale")
        {
            Description = "Multiply Theorem 4.1's step size (1 = the theorem; eta is capped at 1)", DefaultValueFactory = _ => defaults.StepScale,
        }.Positive();
        var plot = new Option<string?>("--plot") { Description = "Write a PNG of the gap, its average and the bound against t" }.WritableFile();
        var json = CommonOptions.Json();
        var command = new Command("frank-wolfe",
            "Run the paper's Algorithm 2 (idealized COLA: Frank-Wolfe over the trace-norm ball, a rank-one step per iteration) and check " +
            "Theorem 4.1: the average Frank-Wolfe gap against 2 sqrt(M beta) D / sqrt(T) + epsilon")
        {
            problem, iterations, seed, power, failure, stepScale, plot, json,
        };
        command.SetAction(r =>
        {
            var options = new FrankWolfeOptions
            {
                Problem = r.GetEnum<FrankWolfeProblem>(problem), Iterations = r.GetValue(iterations), Seed = r.GetValue(seed),
                PowerIterations = r.GetValue(power), OracleFailure = r.GetValue(failure), StepScale = r.GetValue(stepScale),
            }.Validate();
            var result = FrankWolfe.Run(options);
            if (r.GetValue(plot) is { } png) FrankWolfePlot.Save(result, png);
            if (r.GetValue(json))
            {
                output.WriteLine(JsonLines.Serialize(new
                {
                    problem = EnumNames.Name(result.Problem), iterations = result.Iterations, average_gap = result.AverageGap,
                    bound = result.Bound, bound_holds = result.BoundHolds, final_rank = result.FinalRank, epsilon = result.Epsilon,
                    oracle = result.Oracle, oracle_tolerance = result.OracleTolerance, gradient_bound = result.GradientBound,
                    measured_epsilon = result.MeasuredEpsilon, oracle_within_tolerance = result.OracleWithinTolerance,
                    eta = result.Eta, eta_capped = result.EtaCapped, beta = result.Beta, m = result.M, d = result.D, radius = result.Radius,
                    initial_loss = result.InitialLoss, final_loss = result.FinalLoss, final_gap = result.Steps[^1].Gap,
                }));
                return 0;
            }
            output.WriteLine($"Algorithm 2 on {EnumNames.Name(result.Problem)}: T = {result.Iterations}, trace-norm radius tau = {result.Radius:G4}");
            output.WriteLine($"  beta = {result.Beta:G4}, M = {result.M:G4}, D = 2 tau = {result.D:G4}, eta = {result.Eta:G4}" +
                (result.EtaCapped ? " (capped at 1)" : ""));
            foreach (var s in result.Steps.Where(s => s.T == 1 || s.T == result.Iterations || IsPowerOfTwo(s.T)))
                output.WriteLine($"  t {s.T,5}  loss {s.Loss,12:G5}  gap {s.Gap,12:G5}  average gap {s.AverageGap,12:G5}  rank {s.Rank,3}");
            output.WriteLine($"  average gap {result.AverageGap:G5} {(result.BoundHolds ? "<=" : ">")} bound {result.Bound:G5} " +
                $"(2 sqrt(M beta) D / sqrt(T) + epsilon, epsilon = {result.Epsilon:G3} a priori); final rank {result.FinalRank}, loss {result.InitialLoss:G5} -> {result.FinalLoss:G5}");
            output.WriteLine($"  oracle {result.Oracle}: stated tolerance delta = {result.OracleTolerance:G3} (epsilon = delta tau Gamma, Gamma = {result.GradientBound:G4}); " +
                $"largest error made {result.MeasuredEpsilon:G3}{(result.OracleWithinTolerance ? "" : ", beyond its tolerance: the theorem's premise fails")}");
            return 0;
        });
        return command;
    }

    static bool IsPowerOfTwo(int x) => (x & (x - 1)) == 0;
}
