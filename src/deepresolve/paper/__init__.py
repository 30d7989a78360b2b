"""The paper's experiments: synthetic data sets, model architectures, training, the claims checked on the
synthetic sets, the demo, and DeepSEA's output table."""
