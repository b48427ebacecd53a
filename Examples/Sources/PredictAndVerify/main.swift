// Usage: swift run PredictAndVerify [CASE_FOLDER]
//   CASE_FOLDER holds model.pth.tar and clip0..2.safetensors (default: ../Fixtures/mini-a2b4-f4x2).
import BLConvert
import Foundation

let folder = URL(fileURLWithPath: CommandLine.arguments.dropFirst().first ?? "../Fixtures/mini-a2b4-f4x2")
let clips = (0..<3).map { folder.appendingPathComponent("clip\($0).safetensors") }

do {
    // 1. Import the checkpoint into a model package (T = 8 frames per clip: the fixture's name
    //    does not say it).
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(getpid()).blc")
    defer { try? FileManager.default.removeItem(at: output) }
    let summary = try Converter.importCheckpoint(folder.appendingPathComponent("model.pth.tar"), to: output, frames: 8)
    print("imported: \(summary.configuration)")

    // 2. Load the package and predict the first sample of a reference clip.
    let model = try BLVNetModel(package: output, options: RuntimeOptions(threads: 2))
    let clip = try Clip(contentsOf: clips[1])
    let prediction = try model.predict(clip: clip, top: 3)[0]
    for (rank, c) in prediction.classes.enumerated() {
        print("  \(rank + 1). class \(c.index): \(String(format: "%.2f", c.probability * 100))%")
    }

    // 3. Verify against the reference model's float64 logits.
    let report = try Verifier.verify(model: model, clips: clips)
    for c in report.clips {
        print("\(c.file.lastPathComponent): max rel \(String(format: "%.1e", c.agreement.maxRelativeError)), \(c.passed ? "pass" : "FAIL")")
    }
    print(report.passed ? "parity: all \(report.clips.count) clips pass" : "parity: FAILED")
    exit(report.passed ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    if case .weights(let mismatch)? = error.detail {
        FileHandle.standardError.write(Data("missing: \(mismatch.missing.map(\.name))\n".utf8))
    }
    exit(2)
}
