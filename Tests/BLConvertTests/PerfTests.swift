import BLCore
@testable import BLEngine
import BLGraph
import BLKernels
import Testing
import BLTestSupport

/// The performance-side additions: vectorized half widening, per-step profiles, kernel reports.
@Suite struct PerfTests {
    /// Every float16 and bfloat16 bit pattern widens exactly as `HalfConversion` does, through the
    /// 8-lane path, the scalar tail and with threads.
    @Test func widenHalfIsBitExactForEveryPattern() {
        let n = 65_536 + 5  // a tail that is not a multiple of 8
        var src = [UInt16](repeating: 0, count: n)
        for i in 0..<n { src[i] = UInt16(truncatingIfNeeded: i &* 40_503) }  // every pattern once (odd multiplier), reordered
        for bf16 in [false, true] {
            for threads in [1, 2] {
                var out = [Float](repeating: .nan, count: n)
                var ctx = KernelContext(threads: threads)
                ctx.minParallelElements = 1
                src.withUnsafeBytes { raw in
                    out.withUnsafeMutableBufferPointer { o in
                        Kernels.widenHalf(raw.baseAddress!, count: n, bfloat16: bf16, output: o.baseAddress!, context: ctx)
                    }
                }
                var mismatches = 0
                for i in 0..<n {
                    let want = bf16 ? HalfConversion.bfloat16ToFloat(src[i]) : HalfConversion.halfToFloat(src[i])
                    if out[i].bitPattern != want.bitPattern { mismatches += 1 }
                }
                #expect(mismatches == 0, "bfloat16 \(bf16), threads \(threads): \(mismatches) of \(n) differ")
            }
        }
        // Spot values.
        let specials: [UInt16] = [0x3c00, 0xc000, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x7bff, 0, 0, 0, 0, 0, 0, 0, 0]
        var out = [Float](repeating: 0, count: specials.count)
        specials.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { o in
                Kernels.widenHalf(raw.baseAddress!, count: specials.count, bfloat16: false, output: o.baseAddress!, context: .serial)
            }
        }
        #expect(out[0] == 1 && out[1] == -2 && out[2] == 0x1p-24 && out[3] == 1023 * 0x1p-24)
        #expect(out[4] == .infinity && out[5] == -.infinity && out[6].sign == .minus && out[6] == 0 && out[7] == 65504)
    }

    /// The per-step profile covers every step of the plan once, its per-op sums are what `profile`
    /// reports, and its MACs add up to the graph's own count.
    @Test func profileStepsCoverThePlan() throws {
        let built = try EveryOpGraph.make()
        let input = try EveryOpGraph.input(batch: 2, height: 33, width: 47)
        let engine = try Engine(graph: built.graph, weights: built.weights, context: KernelContext(threads: 2))
        let p = try engine.profileSteps(input)
        let plan = try engine.memoryPlan(batch: 2, height: 33, width: 47)
        #expect(p.steps.count == plan.stepCount)
        // Every node that is not a view/input is computed by exactly one step.
        let computed = p.steps.flatMap(\.nodes)
        #expect(Set(computed).count == computed.count)
        #expect(Set(computed) == Set(0..<built.graph.nodes.count).subtracting(absorbedSelections(engine)))
        let cost = try built.graph.cost(batch: 2, height: 33, width: 47)
        #expect(p.steps.reduce(0) { $0 + $1.macs } == cost.totalMACs)
        #expect(p.secondsByOp.keys.contains("conv2d+add"))
        #expect(abs(p.secondsByOp.values.reduce(0, +) - p.totalSeconds) < 1e-9)
        let slow = p.slowest(3)
        #expect(slow.count == 3 && slow[0].seconds >= slow[1].seconds && slow[1].seconds >= slow[2].seconds)
        #expect(p.steps.contains { $0.op.hasPrefix("conv2d") && $0.detail.contains("->") && $0.macs > 0 })
    }

    /// Nodes no step names in its `nodes` list: `duplicateFrames` folded into a TAM's reads.
    private func absorbedSelections(_ engine: Engine) -> Set<Int> {
        var s = Set<Int>()
        for node in engine.graph.nodes {
            if case .duplicateFrames = node.op, engine.defaultFusion.absorbed.contains(node.id) { s.insert(node.id) }
        }
        return s
    }

    @Test func kernelAdviceFollowsCoreAndFlags() {
        let avx512: Set<String> = ["avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        #expect(BLASRuntime.preferredCoreType(environment: [:], core: "Haswell", cpuFlags: avx512) == "SKYLAKEX")
        #expect(BLASRuntime.preferredCoreType(environment: [:], core: "Haswell", cpuFlags: ["avx2", "fma"]) == nil)
        #expect(BLASRuntime.preferredCoreType(environment: [:], core: "SkylakeX", cpuFlags: avx512) == nil)
        #expect(BLASRuntime.preferredCoreType(environment: ["OPENBLAS_CORETYPE": "Haswell"], core: "Haswell", cpuFlags: avx512) == nil)
        #expect(!BLASRuntime.coreName.isEmpty)
    }
}
