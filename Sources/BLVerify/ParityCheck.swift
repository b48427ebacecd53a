import BLCore
import BLGraph
import BLEngine
import BLSafetensors

/// A reference clip file as written by the reference exporter: `input`, `logits`, `logits_f64`,
/// and optionally `act.<module>` intermediate outputs.
package struct ClipReference: Sendable {
    package var path: String
    package var input: Tensor
    /// The ground truth: `logits_f64` when present, else `logits`.
    package var reference: Tensor
    package var referenceName: String
    package var activations: [(module: String, tensor: Tensor)]

    package static func load(path: String) throws -> ClipReference {
        let file = try MappedFile(path: path)
        if file.count >= 6, file.bytes.prefix(6).elementsEqual([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) {
            throw BLError(.invalidArgument, "a .npy file holds only an input tensor; verify needs a reference clip: a safetensors file with 'input' and 'logits_f64' (tools/export_reference.py writes them). For predictions on this input use blconvert run", file: path)
        }
        let f = try SafetensorsFile.load(file: file)
        guard let input = f.tensor("input") else {
            throw BLError(.mismatch, "no tensor 'input' in the clip file (found: \(f.tensors.prefix(8).map { $0.name }.joined(separator: ", ")))", file: path)
        }
        guard input.rank == 4 else {
            throw BLError(.mismatch, "'input' must be [N, T*C, H, W], found shape \(input.shape)", file: path)
        }
        let refName: String
        if f.tensor("logits_f64") != nil { refName = "logits_f64" }
        else if f.tensor("logits") != nil { refName = "logits" }
        else { throw BLError(.mismatch, "no reference output ('logits_f64' or 'logits') in the clip file", file: path) }
        guard let ref = f.tensor(refName), ref.rank == 2, ref.shape[0] == input.shape[0] else {
            throw BLError(.mismatch, "'\(refName)' must be [N, classes] with N = \(input.shape[0])", file: path)
        }
        let acts = f.tensors.filter { $0.name.hasPrefix("act.") }.map { (module: String($0.name.dropFirst(4)), tensor: $0.tensor) }
        // A NaN or infinite reference compares as "within tolerance" in no meaningful way: refuse it.
        for (name, t) in [(refName, ref)] + acts.map({ ("act." + $0.module, $0.tensor) }) where t.dtype.isFloatingPoint {
            var bad: (Int, Double)?
            var i = 0
            t.forEachElementOffset { off in
                if bad == nil { let v = t.loadDouble(off); if !v.isFinite { bad = (i, v) } }
                i += 1
            }
            if let (index, value) = bad {
                throw BLError(.numeric, "reference '\(name)' holds \(value) at element \(index): a reference must be finite", file: path)
            }
        }
        return ClipReference(path: path, input: input, reference: ref, referenceName: refName, activations: acts)
    }
}

package struct VerifyOptions: Sendable {
    /// Pass when max|out - ref| <= atol + rtol * max|ref| (per clip, and per activation).
    package var rtol: Double = 1e-5
    package var atol: Double = 0
    /// Also require the top-5 classes of every sample in the reference's order.
    package var requireTop5: Bool = false
    package var compareActivations: Bool = true

    package init(rtol: Double = 1e-5, atol: Double = 0, requireTop5: Bool = false, compareActivations: Bool = true) {
        self.rtol = rtol
        self.atol = atol
        self.requireTop5 = requireTop5
        self.compareActivations = compareActivations
    }
}

package struct SampleResult: Sendable {
    package var index: Int
    package var agreement: Agreement
    package var top1: Bool
    package var top5: Bool
    package var referenceTop5: [Int]
    package var outputTop5: [Int]
}

package struct ActivationResult: Sendable {
    package var module: String
    package var node: Int?
    package var agreement: Agreement?
    package var passed: Bool
    package var note: String?
}

package struct ClipResult: Sendable {
    package var file: String
    package var inputShape: [Int]
    package var referenceName: String
    package var overall: Agreement
    package var samples: [SampleResult]
    package var activations: [ActivationResult]
    /// The first reference module (in execution order) whose output is outside tolerance.
    package var firstDivergence: ActivationResult?
    package var passed: Bool
    package var seconds: Double
}

/// A clip that could not be checked at all: unreadable, or not an input this model accepts.
package struct ClipError: Sendable {
    package var file: String
    package var error: BLError

    package init(file: String, error: BLError) {
        self.file = file
        self.error = error
    }
}

package enum ParityCheck {
    /// Why a reference module has no node to compare with: the optimized graph folded its output
    /// away (a convolution whose BatchNorm was folded into it, a ReLU fused into the node before),
    /// or the graph has no such module at all.
    package static func untappedNote(_ module: String, graph: Graph) -> String {
        let unoptimized = "import the checkpoint with `blconvert import --no-optimize` to compare it"
        if let node = graph.nodes.first(where: { $0.origin == module }) {
            if case .conv2d = node.op {
                let into = graph.taps.filter { $0.node == node.id }.map(\.module)
                let compared = into.isEmpty ? "" : " (\(into.joined(separator: ", ")), compared instead)"
                return "not compared: the optimized graph folded this convolution into the following BatchNorm\(compared), so its own output no longer exists; \(unoptimized)"
            }
            return "not compared: the optimized graph fused this module into node \(node.id) (\(node.op.name)); \(unoptimized)"
        }
        return "not compared: no node of the graph reproduces this module"
    }

    /// Runs one clip and compares the output (and tapped intermediates) with the reference.
    package static func verify(engine: Engine, graph: Graph, clip: ClipReference, options: VerifyOptions,
                              clock: () -> Double) throws -> ClipResult {
        var taps: [(module: String, node: Int?, tensor: Tensor)] = []
        if options.compareActivations {
            for a in clip.activations {
                taps.append((a.module, graph.tap(a.module), a.tensor))
            }
        }
        let capture = Set(taps.compactMap { $0.node })
        let start = clock()
        let out: Tensor, captured: [Int: Tensor]
        do {
            (out, captured) = try engine.run(clip.input, capture: capture)
        } catch let e as BLError {
            throw e.inFile(clip.path)
        }
        let seconds = clock() - start

        let ref = clip.reference.doubles()
        let n = clip.reference.shape[0], k = clip.reference.shape[1]
        guard out.shape == [n, k] else {
            throw BLError(.mismatch, "model output \(out.shape) does not match reference '\(clip.referenceName)' \(clip.reference.shape)",
                          file: clip.path)
        }
        let outValues = out.floats()
        let overall = Agreement.measure(outValues, ref)
        let refScale = ref.reduce(0) { max($0, abs($1)) }
        var samples: [SampleResult] = []
        for s in 0..<n {
            let o = outValues[(s * k)..<((s + 1) * k)]
            let r = ref[(s * k)..<((s + 1) * k)]
            let ag = Agreement.measure(Array(o), Array(r))
            let rt = Ranking.topK(r, min(5, k)), ot = Ranking.topK(o, min(5, k))
            samples.append(SampleResult(index: s, agreement: ag, top1: rt.first == ot.first, top5: rt == ot,
                                        referenceTop5: rt, outputTop5: ot))
        }
        var acts: [ActivationResult] = []
        for t in taps {
            guard let node = t.node, let got = captured[node] else {
                acts.append(ActivationResult(module: t.module, node: t.node, agreement: nil, passed: true,
                                             note: untappedNote(t.module, graph: graph)))
                continue
            }
            guard got.elementCount == t.tensor.elementCount else {
                acts.append(ActivationResult(module: t.module, node: node, agreement: nil, passed: false,
                                             note: "shape \(got.shape) vs reference \(t.tensor.shape)"))
                continue
            }
            let r = t.tensor.doubles()
            let ag = Agreement.measure(got.floats(), r)
            let scale = r.reduce(0) { max($0, abs($1)) }
            acts.append(ActivationResult(module: t.module, node: node, agreement: ag,
                                         passed: ag.passes(rtol: options.rtol, atol: options.atol, refScale: scale), note: nil))
        }
        // Execution order of the graph decides which divergence came first.
        let firstBad = acts.filter { !$0.passed }.min { ($0.node ?? Int.max) < ($1.node ?? Int.max) }
        var passed = overall.passes(rtol: options.rtol, atol: options.atol, refScale: refScale)
        if options.requireTop5 { passed = passed && samples.allSatisfy { $0.top5 } }
        passed = passed && acts.allSatisfy { $0.passed }
        return ClipResult(file: clip.path, inputShape: clip.input.shape, referenceName: clip.referenceName,
                          overall: overall, samples: samples, activations: acts, firstDivergence: firstBad,
                          passed: passed, seconds: seconds)
    }
}
