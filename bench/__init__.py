"""trnbench: a benchmarking harness for LLM training on AWS Trainium, GPUs and CPUs."""
