import BLCore

/// The hyper-parameters of a bLVNet-TAM network as far as they shape its weights and its graph.
package struct BLVNetConfig: Sendable, Equatable {
    /// Classifier layout: the reference `fc`, or `new_fc` after a dropout (trained with dropout > 0).
    package enum Head: String, Sendable, Equatable {
        case fc
        case dropoutNewFC = "dropout+new_fc"
    }

    /// Bottleneck blocks per stage (`layers` of the reference: [3, 4, 6, 3] for depth 50).
    /// A stage with 1 or 2 blocks builds the same modules; such stages read as 2.
    package var blocks: [Int]
    /// Little-branch blocks of layer1..layer3 (`max(1, blocks // beta - 1)` in the reference).
    package var littleBlocks: [Int]
    /// Channel ratio of the little branch.
    package var alpha: Int
    /// Depth ratio of the little branch, when known: the weights only show `littleBlocks`, so beta
    /// comes from the checkpoint's name or `arch` string when it agrees with them, else nil.
    package var beta: Int?
    /// Input frames per clip `T` (the reference `groups`, twice the `f8` of `f8x2`). Always even.
    package var frames: Int
    /// Frames each TAM blends (3, or any count through `blending_layers`).
    package var blendingFrames: Int
    package var numClasses: Int
    /// 3 for RGB, 10 for stacked optical flow.
    package var inputChannels: Int
    package var head: Head

    package init(blocks: [Int], littleBlocks: [Int], alpha: Int, beta: Int?, frames: Int, blendingFrames: Int,
                numClasses: Int, inputChannels: Int, head: Head) {
        self.blocks = blocks
        self.littleBlocks = littleBlocks
        self.alpha = alpha
        self.beta = beta
        self.frames = frames
        self.blendingFrames = blendingFrames
        self.numClasses = numClasses
        self.inputChannels = inputChannels
        self.head = head
    }

    /// A configuration as the reference constructor takes it (little blocks from beta).
    package init(blocks: [Int], alpha: Int, beta: Int, frames: Int, blendingFrames: Int = 3,
                numClasses: Int, inputChannels: Int = 3, head: Head = .dropoutNewFC) {
        self.init(blocks: blocks, littleBlocks: blocks.prefix(3).map { BLVNetConfig.littleCount(blocks: $0, beta: beta) },
                  alpha: alpha, beta: beta, frames: frames, blendingFrames: blendingFrames,
                  numClasses: numClasses, inputChannels: inputChannels, head: head)
    }

    /// `max(1, blocks // beta - 1)`.
    package static func littleCount(blocks: Int, beta: Int) -> Int {
        max(1, blocks / max(beta, 1) - 1)
    }

    /// Big-branch blocks of layer1..layer3: `blocks - 1`, at least one.
    package var bigBlocks: [Int] { blocks.prefix(3).map { max(1, $0 - 1) } }

    /// The reference depth (50, 101, 152) when the blocks match one, else nil.
    package var depth: Int? {
        switch blocks {
        case [3, 4, 6, 3]: return 50
        case [4, 8, 18, 3]: return 101
        case [5, 12, 30, 3]: return 152
        default: return nil
        }
    }

    /// Stage output channels (Bottleneck expansion 4 over 64, 128, 256, 512).
    package static let stageChannels = [256, 512, 1024, 2048]

    package var json: JSON {
        func i(_ x: Int) -> JSON { .int(Int64(x)) }
        return .object([
            ("depth", depth.map(i) ?? .null),
            ("blocks", .array(blocks.map(i))),
            ("little_blocks", .array(littleBlocks.map(i))),
            ("alpha", i(alpha)),
            ("beta", beta.map(i) ?? .null),
            ("frames", i(frames)),
            ("blending_frames", i(blendingFrames)),
            ("num_classes", i(numClasses)),
            ("input_channels", i(inputChannels)),
            ("head", .string(head.rawValue)),
        ])
    }

    package init(json: JSON) throws {
        func int(_ k: String) throws -> Int {
            guard let v = json[k]?.intValue else { throw BLError(.format, "configuration: \"\(k)\" must be an integer") }
            return v
        }
        func ints(_ k: String) throws -> [Int] {
            guard let a = json[k]?.arrayValue else { throw BLError(.format, "configuration: \"\(k)\" must be an array") }
            return try a.map { x in
                guard let v = x.intValue else { throw BLError(.format, "configuration: \"\(k)\" must hold integers") }
                return v
            }
        }
        guard let h = json["head"]?.stringValue, let head = Head(rawValue: h) else {
            throw BLError(.format, "configuration: \"head\" must be \"fc\" or \"dropout+new_fc\"")
        }
        self.init(blocks: try ints("blocks"), littleBlocks: try ints("little_blocks"), alpha: try int("alpha"),
                  beta: json["beta"]?.intValue, frames: try int("frames"), blendingFrames: try int("blending_frames"),
                  numClasses: try int("num_classes"), inputChannels: try int("input_channels"), head: head)
    }
}

/// Facts a model's name carries, as the reference names models
/// (`st2stv2-bLVNet-TAM-50-a2-b4-f8x2`, fixture folders `mini-a2b4-f4x2`).
package struct BLVNetNameHints: Sendable, Equatable {
    /// `T` from `-f<n>x2` (T = 2n).
    package var frames: Int?
    package var alpha: Int?
    package var beta: Int?

    package init(_ text: String) {
        let s = Array(text.lowercased().utf8)
        func number(at i: Int) -> (Int, Int)? {
            var j = i, v = 0
            while j < s.count, s[j] >= 0x30, s[j] <= 0x39, j - i < 6 { v = v * 10 + Int(s[j] - 0x30); j += 1 }
            return j > i ? (v, j) : nil
        }
        func isLetter(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) }
        var i = 0
        while i < s.count {
            let boundary = i == 0 || !isLetter(s[i - 1])
            if boundary, s[i] == UInt8(ascii: "f"), let (n, j) = number(at: i + 1), j + 1 < s.count,
               s[j] == UInt8(ascii: "x"), let (m, k) = number(at: j + 1), m == 2, k == s.count || !isLetter(s[k]) {
                frames = 2 * n
            }
            if boundary, s[i] == UInt8(ascii: "a"), let (a, j) = number(at: i + 1) {
                var k = j
                if k < s.count, s[k] == UInt8(ascii: "-") { k += 1 }
                if k < s.count, s[k] == UInt8(ascii: "b"), let (b, _) = number(at: k + 1) {
                    alpha = a
                    beta = b
                }
            }
            i += 1
        }
    }
}
