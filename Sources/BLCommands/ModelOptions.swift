import ArgumentParser
import BLConvert
import BLCore
import Foundation

/// `MODEL [--frames T]`: a model package, or a checkpoint imported in memory.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A model package (written by `blconvert import`) or a checkpoint, imported in memory.")
    var model: String

    @Option(name: .long, help: "Frames per clip T, when a checkpoint's name or arch does not tell it (f8x2 means 16).")
    var frames: Int?

    func validate() throws {
        if let f = frames, f < 2 || f % 2 != 0 {
            throw ValidationError("--frames must be an even number >= 2 (got \(f))")
        }
    }

    /// The model, through the library: a package directory, else a checkpoint imported in memory.
    func load(threads: ThreadOptions, weights: WeightMemoryOptions, compute: ComputeOptions = ComputeOptions()) throws -> BLVNetModel {
        try load(RuntimeOptions(threads: threads.threads, halfPrecisionWeights: weights.weightsInMemory,
                                compute: compute.compute))
    }

    func load(_ options: RuntimeOptions = .init()) throws -> BLVNetModel {
        let (loaded, warnings) = try Warnings.collect {
            try BLVNetModel(contentsOf: URL(fileURLWithPath: model), frames: frames, options: options)
        }
        for w in warnings { Console.err("warning: \(w)") }
        return loaded
    }
}

/// `--weights-in-memory f32|native`: how a float16 / bfloat16 package's weights are held while running.
struct WeightMemoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Weights of a float16/bfloat16 package in memory: native (kept half-size, converted per layer as used) or f32 (converted once at load). Float32 packages are unaffected.",
        valueName: "f32|native"))
    var weightsInMemory: RuntimeOptions.HalfPrecisionWeights = .native
}

extension RuntimeOptions.HalfPrecisionWeights: ExpressibleByArgument {}
