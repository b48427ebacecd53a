import ArgumentParser
import BLConvert
import BLCore
import BLEngine
import BLKernels
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure time per clip, achieved GFLOP/s and memory on random input.",
        discussion: """
        Runs --warmup runs, then --runs timed runs of --clips clips of the given
        size, and reports the median and minimum time per clip, GFLOP/s
        (2 x multiply-accumulates from the IR / time), the planned activation arena
        and the process's peak RSS. --profile adds the time per op kind of one run
        and its ten slowest steps (time, GFLOP/s, op, shape, reference module).
        The OpenBLAS kernel family in use is printed too: OPENBLAS_CORETYPE chooses
        it when the library loads.

        Examples:
          blconvert bench r50.blc --input 224x224 --threads 2 --runs 10
          blconvert bench r50.blc --json --profile
        """
    )

    @OptionGroup var model: ModelOptions

    @OptionGroup var inputSize: InputSizeOptions
    var input: InputSize { inputSize.input }

    @Option(name: .long, help: "Clips per run (the batch N).")
    var clips: Int = 1

    @Option(name: .long, help: "Timed runs.")
    var runs: Int = 5

    @Option(name: .long, help: "Untimed warm-up runs.")
    var warmup: Int = 1

    @Flag(name: .long, help: "Also time one run per op kind and list its ten slowest steps.")
    var profile = false

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var weightMemory: WeightMemoryOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if clips < 1 || clips > 64 { throw ValidationError("--clips must be between 1 and 64") }
        if runs < 1 || runs > 1000 { throw ValidationError("--runs must be between 1 and 1000") }
        if warmup < 0 { throw ValidationError("--warmup must be >= 0") }
    }

    func run() throws {
        inputSize.warn()
        let r = try reportingErrors { () -> (times: [Double], macs: Int, plan: MemoryPlanSummary, prof: EngineProfile?, config: String) in
            let loaded = try model.load(threads: threads, weights: weightMemory)
            let cost = try loaded.cost(height: input.height, width: input.width, batch: clips)
            let engine = loaded.engine
            let c = loaded.configuration
            let shape = [clips, c.frames * c.inputChannels, input.height, input.width]
            var rng: UInt64 = 0x9e37_79b9_7f4a_7c15
            let count = shape.reduce(1, *)
            let clip = try Tensor.make(dtype: .float32, shape: shape) { raw in
                let p = raw.bindMemory(to: Float.self)
                for i in 0..<count {
                    rng = rng &* 6364136223846793005 &+ 1442695040888963407
                    p[i] = Float(Int64(bitPattern: rng >> 11) % 2_000_001 - 1_000_000) / 1_000_000
                }
            }
            for i in 0..<warmup {
                Console.progress("warm-up \(i + 1) of \(warmup)")
                _ = try engine.run(clip)
            }
            var times: [Double] = []
            for i in 0..<runs {
                Console.progress("run \(i + 1) of \(runs)" + (times.isEmpty ? "" : ", last \(Format.fixed(times.last! / Double(clips), 3)) s per clip"))
                let t0 = MonotonicClock.seconds()
                _ = try engine.run(clip)
                times.append((MonotonicClock.seconds() - t0) / Double(clips))
            }
            Console.progress("")
            let prof = profile ? try engine.profileSteps(clip) : nil
            let plan = try engine.memoryPlan(batch: clips, height: input.height, width: input.width)
            return (times, cost.multiplyAccumulates, plan, prof, Self.short(c))
        }
        let kernels = RuntimeOptions(threads: threads.threads).kernelContext
        let sorted = r.times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let best = sorted.first ?? 0
        let flopsPerClip = 2.0 * Double(r.macs) / Double(clips)
        let rss = ProcessUsage.peakResidentBytes()
        let profSorted = (r.prof?.secondsByOp ?? [:]).sorted { $0.value > $1.value }
        let slowest = r.prof?.slowest(10) ?? []
        // Multiply-accumulates per op kind, for GFLOP/s by kind.
        var macsByOp: [String: Int] = [:]
        for step in r.prof?.steps ?? [] { macsByOp[step.op, default: 0] += step.macs }
        func gflops(_ op: String, _ seconds: Double) -> Double? {
            guard let m = macsByOp[op], m > 0, seconds > 0 else { return nil }
            return 2 * Double(m) / seconds / 1e9
        }
        if json.json {
            var obj: [(String, JSON)] = [
                ("model", .string(model.model)), ("config", .string(r.config)),
                ("input", .object([("clips", .int(Int64(clips))), ("height", .int(Int64(input.height))), ("width", .int(Int64(input.width)))])),
                ("threads", .int(Int64(threads.count))),
                ("runs", .int(Int64(runs))), ("warmup", .int(Int64(warmup))),
                ("seconds_per_clip_median", .double(median)), ("seconds_per_clip_min", .double(best)),
                ("seconds_per_clip_all", .array(r.times.map { .double($0) })),
                ("gflop_per_clip", .double(flopsPerClip / 1e9)),
                ("gflops_median", .double(flopsPerClip / median / 1e9)), ("gflops_best", .double(flopsPerClip / best / 1e9)),
                ("planned_activation_bytes", .int(Int64(r.plan.activationBytes))),
                ("planned_scratch_bytes", .int(Int64(r.plan.scratchBytes))),
                ("peak_rss_bytes", .int(Int64(rss))),
                ("openblas_core", .string(BLASRuntime.coreName)),
                ("convolution_gemm", .string(Kernels.convolutionGemmName(kernels))),
            ]
            if profile {
                obj.append(("profile_seconds_by_op", .object(profSorted.map { ($0.key, .double($0.value)) })))
                obj.append(("profile_gflops_by_op", .object(profSorted.compactMap { k, v in gflops(k, v).map { (k, .double($0)) } })))
                obj.append(("profile_slowest_steps", .array(slowest.map { t in
                    .object([("node", .int(Int64(t.node))), ("op", .string(t.op)), ("seconds", .double(t.seconds)),
                             ("gflops", .double(t.gflops)), ("macs", .int(Int64(t.macs))),
                             ("origin", t.origin.map { .string($0) } ?? .null), ("detail", .string(t.detail))])
                })))
            }
            Console.out(JSON.object(obj).strictJSONText)
            return
        }
        var s = "model: \(model.model) (\(r.config))\n"
        s += "input: \(clips) x \(input.height)x\(input.width), \(threads.count) threads, \(runs) run\(runs == 1 ? "" : "s") after \(warmup) warm-up\n"
        s += "time per clip: median \(Format.fixed(median * 1000, 1)) ms, min \(Format.fixed(best * 1000, 1)) ms\n"
        s += "throughput: \(Format.fixed(flopsPerClip / median / 1e9, 1)) GFLOP/s at the median (\(Format.fixed(flopsPerClip / 1e9, 2)) GFLOP per clip)\n"
        let advice = BLASRuntime.kernelAdvice(environment: ProcessInfo.processInfo.environment, gemm: kernels.gemm)
        s += "convolution GEMM: \(Kernels.convolutionGemmName(kernels))" + (advice.map { " (note: \($0))" } ?? "") + "\n"
        s += "memory: planned arena \(Format.bytes(r.plan.activationBytes)) activations + \(Format.bytes(r.plan.scratchBytes)) scratch, peak RSS \(Format.bytes(rss))\n"
        if profile {
            let total = profSorted.reduce(0) { $0 + $1.value }
            s += "\nprofile (one run):\n"
            for (k, v) in profSorted {
                let rate = gflops(k, v).map { Format.fixed($0, 1) + " GFLOP/s" } ?? ""
                s += "  " + Format.pad(k, 32) + Format.lpad(Format.fixed(v * 1000, 1), 9) + " ms  "
                    + Format.lpad(Format.fixed(total > 0 ? 100 * v / total : 0, 1), 5) + "%  " + Format.lpad(rate, 15) + "\n"
            }
            s += "\nslowest steps (same run):\n"
            s += "  " + Format.pad("node", 6) + Format.lpad("ms", 8) + Format.lpad("GFLOP/s", 9) + "  " + Format.pad("op", 18) + Format.pad("shape", 28) + "origin\n"
            for t in slowest {
                s += "  " + Format.pad(String(t.node), 6) + Format.lpad(Format.fixed(t.seconds * 1000, 1), 8)
                    + Format.lpad(t.macs > 0 ? Format.fixed(t.gflops, 1) : "-", 9) + "  " + Format.pad(t.op, 18)
                    + Format.pad(t.detail, 28) + (t.origin ?? "") + "\n"
            }
        }
        Console.out(s)
    }

    static func short(_ c: ModelConfiguration) -> String {
        "blocks \(c.blocks.map(String.init).joined(separator: ",")), alpha \(c.alpha), T \(c.frames), \(c.classes) classes"
    }
}
