import ArgumentParser
import BLConvert

/// `--compute f32|bf16`: the arithmetic of the convolutions and the classifier.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Arithmetic of the convolutions and the classifier. f32 (default): logits within 1e-5 of PyTorch's float64 run. bf16: bfloat16 products with float32 sums on CPUs with AVX512_BF16 (an error elsewhere); faster, logits within a few 1e-2 relative, the same top-1 and top-5 classes on the test clips (near-tied classes may swap places). Use bf16 for rankings, f32 to compare logits.",
        valueName: "f32|bf16"))
    var compute: RuntimeOptions.Compute = .float32
}

extension RuntimeOptions.Compute: ExpressibleByArgument {}
