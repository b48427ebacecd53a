import ArgumentParser
import BLConvert
import BLCore
import BLEngine
import BLKernels
import BLSafetensors
import BLVerify
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure time per clip, achieved GFLOP/s and memory, on random input or a clip file.",
        discussion: """
        Loads the model (timed: reading, packing the weights for the kernels), runs
        once cold (timed: what a one-clip `run` pays, planning and first touches of
        memory included), then --warmup runs and --runs timed runs of --clips clips of
        the given size (or of the clip file --clip), and reports the median and
        minimum wall time and the median CPU time (all threads) per clip, GFLOP/s
        (2 x multiply-accumulates from the IR / time), the planned activation arena
        and the process's peak RSS. --peak first measures the machine's float32 FMA
        and bfloat16 dot-product peak (independent chains on every thread) and
        reports the fraction of it achieved. --profile adds one run's time per op
        kind, per kind of convolution (stem, 1x1, 3x3 s1, strided, Winograd), the
        kernel path of each layer, and the ten slowest steps (with --json: every step).

        Kernel choices, for comparing them: BLCONVERT_WINOGRAD=off|2|4|6 turns
        Winograd off or forces one tile on every 3x3 stride-1 layer (unset: each
        layer keeps F(4x4) or F(2x2) only where its error, measured at load against
        float64, is within 1.5e-6); BLCONVERT_GEMM=blas runs every convolution
        through OpenBLAS (im2col) instead of the packed AVX-512 kernels;
        BLCONVERT_DIRECT=off packs B for the layers of at most 64 output channels
        (stride 1 or 2 across) that otherwise read it from zero-padded copies of
        their input rows ("GEMM direct" in --profile); BLCONVERT_CHAIN=off runs
        the bottlenecks (1x1, 3x3, 1x1 and the residual add) layer by layer instead
        of frame by frame ("(chain)" steps, "frame by frame" paths in --profile;
        BLCONVERT_CHAIN=N: only those whose planes have at least N pixels, 784 by
        default).

        Examples:
          blconvert bench r50.blc --input 224x224 --threads 2 --runs 10 --peak
          blconvert bench r50.blc --clip clip0.safetensors --compute bf16 --json
          blconvert bench r50.blc --profile --clips 20
        """
    )

    @OptionGroup var model: ModelOptions

    @OptionGroup var inputSize: InputSizeOptions
    var input: InputSize { inputSize.input }

    @Option(name: .long, help: "Clips per run (the batch N), random values.")
    var clips: Int = 1

    @Option(name: .long, help: "Run this clip file (.safetensors with `input`, or .npy) instead of random clips; with `logits_f64` the error against it is reported.")
    var clip: String?

    @Option(name: .long, help: "Timed runs.")
    var runs: Int = 5

    @Option(name: .long, help: "Untimed warm-up runs (after the cold run).")
    var warmup: Int = 1

    @Flag(name: .long, help: "Also time one run per op kind and per kind of convolution, and list its ten slowest steps.")
    var profile = false

    @Flag(name: .long, help: "Measure the machine's FMA and bf16 peak first and report the fraction achieved.")
    var peak = false

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var weightMemory: WeightMemoryOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if clips < 1 || clips > 64 { throw ValidationError("--clips must be between 1 and 64") }
        if runs < 1 || runs > 1000 { throw ValidationError("--runs must be between 1 and 1000") }
        if warmup < 0 { throw ValidationError("--warmup must be >= 0") }
        if clip != nil && clips != 1 { throw ValidationError("--clips makes random clips; --clip runs the file's own batch, so give one or the other") }
    }

    struct Measured {
        var load = 0.0, cold = 0.0
        var times: [Double] = [], cpu: [Double] = []
        var macs = 0, batch = 1
        var shape: [Int] = []
        var plan: MemoryPlanSummary
        var prof: EngineProfile?
        var paths: [Engine.LayerPath] = []
        var config = ""
        var top5: [Int]? = nil
        var errorVsF64: Double? = nil
        var kernelCache = (cached: 0, layers: 0)
    }

    func run() throws {
        inputSize.warn()
        let machine = peak ? MachinePeak.measure(threads: threads.count) : nil
        let r = try reportingErrors { () -> Measured in
            let t0 = MonotonicClock.seconds()
            let loaded = try model.load(threads: threads, weights: weightMemory, compute: compute)
            let load = MonotonicClock.seconds() - t0
            let engine = loaded.engine
            let c = loaded.configuration
            var reference: Tensor? = nil
            let tensor: Tensor
            if let clip {
                tensor = try Clip(contentsOf: URL(fileURLWithPath: clip)).tensor
                if clip.hasSuffix(".safetensors") { reference = try SafetensorsFile.load(path: clip).tensor("logits_f64") }
            } else {
                let shape = [clips, c.frames * c.inputChannels, input.height, input.width]
                var rng: UInt64 = 0x9e37_79b9_7f4a_7c15
                let count = shape.reduce(1, *)
                tensor = try Tensor.make(dtype: .float32, shape: shape) { raw in
                    let p = raw.bindMemory(to: Float.self)
                    for i in 0..<count {
                        rng = rng &* 6364136223846793005 &+ 1442695040888963407
                        p[i] = Float(Int64(bitPattern: rng >> 11) % 2_000_001 - 1_000_000) / 1_000_000
                    }
                }
            }
            let batch = tensor.shape[0]
            Console.progress("cold run")
            let c0 = MonotonicClock.seconds()
            let first = try engine.run(tensor)
            let cold = (MonotonicClock.seconds() - c0) / Double(batch)
            for i in 0..<warmup {
                Console.progress("warm-up \(i + 1) of \(warmup)")
                _ = try engine.run(tensor)
            }
            var times: [Double] = [], cpu: [Double] = []
            for i in 0..<runs {
                Console.progress("run \(i + 1) of \(runs)" + (times.isEmpty ? "" : ", last \(Format.fixed(times.last!, 3)) s per clip"))
                let u0 = ProcessUsage.cpuSeconds(), w0 = MonotonicClock.seconds()
                _ = try engine.run(tensor)
                times.append((MonotonicClock.seconds() - w0) / Double(batch))
                cpu.append((ProcessUsage.cpuSeconds() - u0) / Double(batch))
            }
            Console.progress("")
            let prof = profile ? try engine.profileSteps(tensor) : nil
            let (h, w) = (tensor.shape[2], tensor.shape[3])
            let cost = try loaded.cost(height: h, width: w, batch: batch)
            let plan = try engine.memoryPlan(batch: batch, height: h, width: w)
            var m = Measured(load: load, cold: cold, times: times, cpu: cpu, macs: cost.multiplyAccumulates,
                             batch: batch, shape: tensor.shape, plan: plan, prof: prof, paths: engine.layerPaths,
                             config: Self.short(c))
            m.kernelCache = loaded.kernelCacheUse
            let logits = first.floats(), classes = first.shape.last ?? 1
            m.top5 = Ranking.topK(logits.prefix(classes), 5)
            if let reference, reference.elementCount == first.elementCount {
                m.errorVsF64 = Agreement.measure(logits, reference.doubles()).maxRelError
            }
            return m
        }
        report(r, machine: machine)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func report(_ r: Measured, machine: MachinePeak?) {
        let precision: ComputePrecision = compute.compute == .float32 ? .float32 : .bfloat16
        let kernels = RuntimeOptions(threads: threads.threads).kernelContext
        let median = Self.median(r.times), best = r.times.min() ?? 0, cpuMedian = Self.median(r.cpu)
        let flopsPerClip = 2.0 * Double(r.macs) / Double(r.batch)
        let rate = median > 0 ? flopsPerClip / median / 1e9 : 0
        let peakRate = machine.map { $0.peak(precision) } ?? 0
        let rss = ProcessUsage.peakResidentBytes()
        let profSorted = (r.prof?.secondsByOp ?? [:]).sorted { $0.value > $1.value }
        let kinds = r.prof?.byKind ?? []
        let slowest = r.prof?.slowest(10) ?? []
        var macsByOp: [String: Int] = [:]
        for step in r.prof?.steps ?? [] { macsByOp[step.op, default: 0] += step.macs }
        func gflops(_ op: String, _ seconds: Double) -> Double? {
            guard let m = macsByOp[op], m > 0, seconds > 0 else { return nil }
            return 2 * Double(m) / seconds / 1e9
        }
        var pathCounts: [String: Int] = [:]
        for p in r.paths { pathCounts[p.path.description, default: 0] += 1 }
        let gemm = compute.compute == .bfloat16 ? ComputePrecision.bfloat16KernelName : Kernels.convolutionGemmName(kernels)
        if json.json {
            var obj: [(String, JSON)] = [
                ("model", .string(model.model)), ("config", .string(r.config)),
                ("input", .object([("clips", .int(Int64(r.batch))), ("height", .int(Int64(r.shape[2]))), ("width", .int(Int64(r.shape[3])))])),
                ("clip_file", clip.map { .string($0) } ?? .null),
                ("threads", .int(Int64(threads.count))), ("compute", .string(compute.compute.rawValue)),
                ("runs", .int(Int64(runs))), ("warmup", .int(Int64(warmup))),
                ("load_seconds", .double(r.load)), ("first_run_seconds_per_clip", .double(r.cold)),
                ("kernel_cache_layers", .int(Int64(r.kernelCache.cached))),
                ("seconds_per_clip_median", .double(median)), ("seconds_per_clip_min", .double(best)),
                ("seconds_per_clip_all", .array(r.times.map { .double($0) })),
                ("cpu_seconds_per_clip_median", .double(cpuMedian)),
                ("cpu_seconds_per_clip_all", .array(r.cpu.map { .double($0) })),
                ("gflop_per_clip", .double(flopsPerClip / 1e9)),
                ("gflops_median", .double(rate)), ("gflops_best", .double(best > 0 ? flopsPerClip / best / 1e9 : 0)),
                ("planned_activation_bytes", .int(Int64(r.plan.activationBytes))),
                ("planned_scratch_bytes", .int(Int64(r.plan.scratchBytes))),
                ("peak_rss_bytes", .int(Int64(rss))),
                ("openblas_core", .string(BLASRuntime.coreName)),
                ("openblas_server", .string(BLASRuntime.serverState)),
                ("convolution_gemm", .string(gemm)),
                ("layer_paths", .object(pathCounts.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
                ("top5", r.top5.map { .array($0.map { .int(Int64($0)) }) } ?? .null),
                ("max_rel_error_vs_f64", r.errorVsF64.map { .double($0) } ?? .null),
            ]
            if let machine {
                obj.append(("peak", .object([
                    ("fma_gflops_per_core", .double(machine.fmaPerCore)), ("bf16_gflops_per_core", .double(machine.bf16PerCore)),
                    ("fma_gflops_wall", .double(machine.fmaWall)), ("bf16_gflops_wall", .double(machine.bf16Wall)),
                    ("threads", .int(Int64(machine.threads))),
                ])))
                obj.append(("fraction_of_peak", .double(peakRate > 0 ? rate / peakRate : 0)))
            }
            if profile {
                obj.append(("profile_seconds_by_op", .object(profSorted.map { ($0.key, .double($0.value)) })))
                obj.append(("profile_gflops_by_op", .object(profSorted.compactMap { k, v in gflops(k, v).map { (k, .double($0)) } })))
                obj.append(("profile_convolutions_by_kind", .array(kinds.map { k in
                    .object([("kind", .string(k.kind)), ("seconds", .double(k.seconds)), ("macs", .int(Int64(k.macs))),
                             ("gflops", .double(k.seconds > 0 ? 2 * Double(k.macs) / k.seconds / 1e9 : 0))])
                })))
                // Every step, slowest first (the text report lists ten).
                obj.append(("profile_steps", .array((r.prof?.slowest(Int.max) ?? []).map { t in
                    .object([("node", .int(Int64(t.node))), ("op", .string(t.op)), ("seconds", .double(t.seconds)),
                             ("gflops", .double(t.gflops)), ("macs", .int(Int64(t.macs))),
                             ("origin", t.origin.map { .string($0) } ?? .null), ("detail", .string(t.detail)),
                             ("path", t.path.map { .string($0) } ?? .null)])
                })))
            }
            Console.out(JSON.object(obj).strictJSONText)
            return
        }
        var s = "model: \(model.model) (\(r.config))\n"
        s += "input: \(r.batch) x \(r.shape[2])x\(r.shape[3])" + (clip.map { " from \($0)" } ?? " random") + ", \(threads.count) threads, compute \(compute.compute.rawValue), \(runs) run\(runs == 1 ? "" : "s") after \(warmup) warm-up\n"
        s += "load: \(Format.fixed(r.load, 3)) s (read and prepare the weights"
        if r.kernelCache.cached > 0 { s += "; \(r.kernelCache.cached) of \(r.kernelCache.layers) layers from the kernel cache" }
        s += "); first run: \(Format.fixed(r.cold * 1000, 1)) ms per clip (cold)\n"
        s += "time per clip: median \(Format.fixed(median * 1000, 1)) ms, min \(Format.fixed(best * 1000, 1)) ms; CPU \(Format.fixed(cpuMedian * 1000, 1)) ms (all threads)\n"
        s += "throughput: \(Format.fixed(rate, 1)) GFLOP/s at the median (\(Format.fixed(flopsPerClip / 1e9, 2)) GFLOP per clip)"
        if let machine {
            s += String(format: ", %.2f of the %@ peak", peakRate > 0 ? rate / peakRate : 0, precision == .float32 ? "FMA" : "bf16")
            s += "\npeak: FMA \(Format.fixed(machine.fmaPerCore, 1)) GFLOP/s per core (\(Format.fixed(machine.fmaWall, 1)) by the wall on \(machine.threads) threads now)"
            if machine.bf16PerCore > 0 { s += ", bf16 \(Format.fixed(machine.bf16PerCore, 1)) per core (\(Format.fixed(machine.bf16Wall, 1)))" }
        }
        s += "\n"
        if let top5 = r.top5 {
            s += "top-5 of sample 0: \(top5.map(String.init).joined(separator: " "))" + (r.errorVsF64.map { "; max rel error vs logits_f64 \(Format.sci($0))" } ?? "") + "\n"
        }
        let advice = compute.compute == .float32 ? BLASRuntime.kernelAdvice(environment: ProcessInfo.processInfo.environment, gemm: kernels.gemm) : nil
        s += "convolution GEMM: \(gemm)" + (advice.map { " (note: \($0))" } ?? "") + "; layers: "
            + pathCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "\n"
        s += "memory: planned arena \(Format.bytes(r.plan.activationBytes)) activations + \(Format.bytes(r.plan.scratchBytes)) scratch, peak RSS \(Format.bytes(rss))\n"
        if profile {
            let total = profSorted.reduce(0) { $0 + $1.value }
            s += "\nprofile (one run):\n"
            for (k, v) in profSorted {
                let rate = gflops(k, v).map { Format.fixed($0, 1) + " GFLOP/s" } ?? ""
                s += "  " + Format.pad(k, 32) + Format.lpad(Format.fixed(v * 1000, 1), 9) + " ms  "
                    + Format.lpad(Format.fixed(total > 0 ? 100 * v / total : 0, 1), 5) + "%  " + Format.lpad(rate, 15) + "\n"
            }
            s += "\nconvolutions by kind (same run; GFLOP/s count a direct convolution's work, so Winograd's may pass the peak):\n"
            for k in kinds {
                let g = k.seconds > 0 ? 2 * Double(k.macs) / k.seconds / 1e9 : 0
                s += "  " + Format.pad(k.kind, 20) + Format.lpad(Format.fixed(k.seconds * 1000, 1), 9) + " ms  "
                    + Format.lpad(Format.fixed(total > 0 ? 100 * k.seconds / total : 0, 1), 5) + "%  "
                    + Format.lpad(Format.fixed(g, 1), 7) + " GFLOP/s"
                    + (peakRate > 0 ? String(format: "  %.2f of peak", g / peakRate) : "") + "\n"
            }
            s += "\nslowest steps (same run):\n"
            s += "  " + Format.pad("node", 6) + Format.lpad("ms", 8) + Format.lpad("GFLOP/s", 9) + "  " + Format.pad("op", 18) + Format.pad("shape", 28) + Format.pad("path", 18) + "origin\n"
            for t in slowest {
                s += "  " + Format.pad(String(t.node), 6) + Format.lpad(Format.fixed(t.seconds * 1000, 1), 8)
                    + Format.lpad(t.macs > 0 ? Format.fixed(t.gflops, 1) : "-", 9) + "  " + Format.pad(t.op, 18)
                    + Format.pad(t.detail, 28) + Format.pad(t.path ?? "", 18) + (t.origin ?? "") + "\n"
            }
        }
        Console.out(s)
    }

    static func short(_ c: ModelConfiguration) -> String {
        "blocks \(c.blocks.map(String.init).joined(separator: ",")), alpha \(c.alpha), T \(c.frames), \(c.classes) classes"
    }
}
