import Foundation
import Testing
import BLCore
import BLSafetensors
import BLVNet
@testable import BLCommands

// Half-precision packages (`import --dtype f16|bf16`): the logits error they reach against the
// reference float64 logits, per model case, dtype and graph (BatchNorm folded or not).
//
// Bounds are about twice the maximum relative error measured on every clip of the case (convolution
// and linear weights rounded, vectors float32). The fixtures' weights are exactly representable in
// bfloat16, so without folding only `new_fc.weight` (and, for float16, weights below its normal
// range) is rounded; folding scales each convolution by gamma / sqrt(var + eps), which no longer is,
// hence the larger optimized errors. Every sample keeps its float64 top-1 class.

/// One measured configuration: the case, the dtype, whether BatchNorm is folded, the bound.
struct HalfPrecisionCase: Sendable, CustomTestStringConvertible {
    var model: String
    var dtype: String
    var optimized: Bool
    /// Measured maximum relative error (verify's `max_rel_error`) times ~2.
    var bound: Double

    var testDescription: String { "\(model) \(dtype)\(optimized ? "" : " --no-optimize") <= \(bound)" }
}

@Suite struct HalfPrecisionCLITests {
    /// Measured: mini f16 2.6e-3 / 3.5e-4 (no-optimize), bf16 1.6e-2 / 3.0e-3.
    /// (Before vectors stayed float32: f16 2.3e-3 / 7.7e-4, bf16 1.4e-2 / 5.3e-3.)
    static let mini = [
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "f16", optimized: true, bound: 5.5e-3),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "f16", optimized: false, bound: 7e-4),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "bf16", optimized: true, bound: 3.5e-2),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "bf16", optimized: false, bound: 6e-3),
    ]

    /// Shared cases. Measured: blend5 f16 5.9e-3 / 1.0e-3, bf16 4.3e-2 / 1.4e-2;
    /// r50 f16 1.1e-3 / 3.1e-4, bf16 7.2e-3 / 2.1e-3 (optimized / no-optimize).
    static let shared = [
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "f16", optimized: true, bound: 1.2e-2),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "f16", optimized: false, bound: 2e-3),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "bf16", optimized: true, bound: 8.5e-2),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "bf16", optimized: false, bound: 3e-2),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "f16", optimized: true, bound: 2.2e-3),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "f16", optimized: false, bound: 6.5e-4),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "bf16", optimized: true, bound: 1.5e-2),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "bf16", optimized: false, bound: 4.2e-3),
    ]

    /// The bundled mini case: fails the float32 tolerance, passes `--rtol bound`, top-1 kept.
    @Test(arguments: mini)
    func miniCaseError(_ c: HalfPrecisionCase) throws {
        let pkg = try CLIFixtures.miniPackage("\(c.dtype)\(c.optimized ? "" : "-noopt")",
                                              ["--dtype", c.dtype] + (c.optimized ? [] : ["--no-optimize"]))
        try checkError(pkg, clips: CLIFixtures.miniClips, c)
    }

    /// The shared blend5 and R50 cases (skipped when the shared fixtures are absent).
    @Test(arguments: shared)
    func sharedCaseError(_ c: HalfPrecisionCase) throws {
        guard let dir = TestData.shared(c.model) else { return }
        let manifest = try CLIFixtures.readJSON(dir + "/manifest.json")
        let frames = try #require(manifest["config"]?["frames"]?.intValue)
        let checkpoint = dir + "/" + (try #require(manifest["checkpoints"]?.objectValue?.first?.1.stringValue))
        let clips = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix("clip") && $0.hasSuffix(".safetensors") }.sorted().map { dir + "/" + $0 }
        #expect(!clips.isEmpty)
        let work = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let pkg = work + "/m.blc"
        let r = CLI.run(["import", checkpoint, "-o", pkg, "--frames", String(frames), "--dtype", c.dtype]
                        + (c.optimized ? [] : ["--no-optimize"]))
        #expect(r.status == 0, "\(r.stderr)")
        try checkError(pkg, clips: clips, c)
    }

    private func checkError(_ pkg: String, clips: [String], _ c: HalfPrecisionCase) throws {
        let strict = CLI.run(["verify", pkg] + clips + ["--json"])
        #expect(strict.status == 1, "\(c.testDescription): passes the float32 tolerance")
        let reported = try #require(strict.json?["clips"] as? [[String: Any]])
        #expect(reported.count == clips.count)
        var worst = 0.0
        for clip in reported {
            worst = max(worst, try #require(clip["max_rel_error"] as? Double))
            let samples = try #require(clip["samples"] as? [[String: Any]])
            #expect(!samples.isEmpty)
            for s in samples { #expect(s["top1_agree"] as? Bool == true, "\(c.testDescription)") }
        }
        #expect(worst <= c.bound && worst > 1e-5, "\(c.testDescription): worst relative error \(worst)")
        let loose = CLI.run(["verify", pkg] + clips + ["--rtol", String(c.bound)])
        #expect(loose.status == 0, "\(loose.stdout)")
    }
}
