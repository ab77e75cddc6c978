// Micro-benchmarks of the hot pieces. Run: dotnet run -c Release --project benchmarks/ChainLora.Benchmarks -- --filter '*'
// The end-to-end step benchmark is `chainlora bench`; the PyTorch comparison is benchmarks/peer.
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(ChainLora.Benchmarks.LoraLinearBenchmarks).Assembly).Run(args);
