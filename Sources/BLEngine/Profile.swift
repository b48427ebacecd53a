/// The time of one step of a profiled run. A bottleneck run frame by frame (one step) gives one
/// timing per convolution, `conv2d (chain)` and the last `conv2d+add (chain)`: the step's wall
/// time shared as the workers' time on each convolution was.
package struct StepTiming: Sendable, Equatable {
    /// The graph node the step runs at (for a fused step, the node whose value it produces).
    package var node: Int
    /// Every graph node the step computes (e.g. a convolution and the `add` it is fused into).
    package var nodes: [Int]
    /// Op name, or the fused names joined by `+` (`conv2d+add`, `duplicateFrames+tam+selectFrames`).
    package var op: String
    /// Wall-clock seconds of the step.
    package var seconds: Double
    /// Multiply-accumulates of the step (convolutions, TAM, linear; 0 for the other ops).
    package var macs: Int
    /// The reference module of the first computed node that has one.
    package var origin: String?
    /// Short shape description: `C->K kHxW sS FxHxW` for convolutions, the output dims otherwise.
    package var detail: String
    /// For convolutions: `stem` (reading the input frames), `1x1`, `3x3 s1`, `strided` or
    /// `other`, with ` Winograd` appended when Winograd ran it; `linear` for the classifier.
    package var kind: String? = nil
    /// The kernel path (`GEMM`, `GEMM bf16`, `Winograd F(4x4)`, ...), when prepared.
    package var path: String? = nil

    /// Achieved GFLOP/s (2 x MACs / time); 0 without MACs.
    package var gflops: Double { seconds > 0 ? 2 * Double(macs) / seconds / 1e9 : 0 }
}

/// Step times of one run, for benchmarks.
package struct EngineProfile: Sendable, Equatable {
    /// Every executed step, in run order.
    package var steps: [StepTiming]

    package init(steps: [StepTiming]) { self.steps = steps }

    /// Seconds per op (step) name.
    package var secondsByOp: [String: Double] {
        var sums = [String: Double]()
        for s in steps { sums[s.op, default: 0] += s.seconds }
        return sums
    }

    /// Seconds and multiply-accumulates per kind of convolution (`StepTiming.kind`).
    package var byKind: [(kind: String, seconds: Double, macs: Int)] {
        var sums = [String: (Double, Int)]()
        for s in steps {
            guard let k = s.kind else { continue }
            let v = sums[k] ?? (0, 0)
            sums[k] = (v.0 + s.seconds, v.1 + s.macs)
        }
        return sums.map { (kind: $0.key, seconds: $0.value.0, macs: $0.value.1) }.sorted { $0.seconds > $1.seconds }
    }

    /// The `count` slowest steps, slowest first.
    package func slowest(_ count: Int) -> [StepTiming] {
        Array(steps.sorted { $0.seconds > $1.seconds }.prefix(max(0, count)))
    }

    /// Sum of every step's seconds.
    package var totalSeconds: Double { steps.reduce(0) { $0 + $1.seconds } }
}
