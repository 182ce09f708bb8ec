"""What training, evaluation and the benchmarks share and the live app never runs: dataset readers and
the stored split, the evaluation protocol, and the landmark metrics (NME, FR, AUC, CED)."""
