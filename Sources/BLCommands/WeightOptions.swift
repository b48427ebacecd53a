import ArgumentParser
import BLCore
import BLEngine

/// `--weights-in-memory f32|native`: how a float16 / bfloat16 package's weights are held while running.
struct WeightMemoryOptions: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        /// Convert every weight to float32 once, when the model loads (fastest runs, float32 memory).
        case f32
        /// Keep convolution and linear weights in the package's dtype, converted just before each use.
        case native
    }

    @Option(name: .long, help: ArgumentHelp(
        "Weights of a float16/bfloat16 package in memory: native (kept half-size, converted per layer as used) or f32 (converted once at load). Float32 packages are unaffected.",
        valueName: "f32|native"))
    var weightsInMemory: Mode = .native

    /// The engine's conversion mode for weights stored as `dtype`.
    func conversion(for dtype: DType) -> WeightConversion {
        guard dtype == .float16 || dtype == .bfloat16 else { return .atBind }
        return weightsInMemory == .native ? .perUse : .atBind
    }
}
