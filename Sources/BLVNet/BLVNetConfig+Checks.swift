import BLCore
import BLGraph

extension BLVNetConfig {
    /// Largest T a package may declare: the reference trains with 8 to 64 frames; a clip of 4096
    /// frames at 224x224 is already 2.4 GB of input.
    package static let maxFrames = 4096

    /// Checks a configuration read from a package against sane bounds and against the graph it
    /// describes (frames and channels of the input node, classes of the last linear layer), so that
    /// no size taken from `metadata.json` is used before it is known to be the graph's.
    package func check(against graph: Graph) throws {
        func bad(_ m: String) -> BLError { BLError(.format, "configuration: \(m)") }
        _ = try Checked.bounded(frames, 2...BLVNetConfig.maxFrames, "configuration: frames")
        guard frames % 2 == 0 else { throw bad("frames \(frames) must be even (big and little frames alternate)") }
        _ = try Checked.bounded(inputChannels, 1...64, "configuration: input_channels")
        _ = try Checked.bounded(numClasses, 1...1_000_000, "configuration: num_classes")
        _ = try Checked.bounded(alpha, 1...64, "configuration: alpha")
        _ = try Checked.bounded(blendingFrames, 1...frames + 1, "configuration: blending_frames")
        if let beta { _ = try Checked.bounded(beta, 1...64, "configuration: beta") }
        guard blocks.count == 4, littleBlocks.count == 3 else {
            throw bad("blocks must list 4 stages and little_blocks 3 (found \(blocks.count) and \(littleBlocks.count))")
        }
        for b in blocks + littleBlocks { _ = try Checked.bounded(b, 1...1000, "configuration: blocks per stage") }
        guard let layout = graph.inputLayout else { throw bad("the graph has no input node") }
        guard layout.frames == frames, layout.channels == inputChannels else {
            throw bad("frames \(frames) and input_channels \(inputChannels) differ from the graph's input (\(layout.frames) frames of \(layout.channels) channels)")
        }
        let linear = graph.nodes.compactMap { n -> Linear? in
            if case .linear(let l) = n.op { return l }
            return nil
        }
        guard let last = linear.last, last.outFeatures == numClasses else {
            throw bad("num_classes \(numClasses) differs from the graph's classifier (\(linear.last.map { "\($0.outFeatures) outputs" } ?? "none"))")
        }
    }
}
