import Foundation

/// Where the test data lives.
/// - `Fixtures/` in the repository: what a fresh clone always has (parser files, the mini case).
/// - `../shared/fixtures` beside the repository (or `$BLCONVERT_SHARED_FIXTURES`): the heavy cases,
///   used when present; tests that need them report clearly when they skip.
enum TestData {
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/BLConvertTests/TestSupport.swift
        return url
    }()

    static func fixture(_ relative: String) -> String {
        repoRoot.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    static let sharedRoot: String? = {
        let env = ProcessInfo.processInfo.environment["BLCONVERT_SHARED_FIXTURES"]
        let candidates: [String?] = [env, repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path]
        for case let c? in candidates where FileManager.default.fileExists(atPath: c + "/README.md") {
            return c
        }
        return nil
    }()

    /// A file under the shared fixtures, or nil (with a note on stderr) when they are absent.
    static func shared(_ relative: String) -> String? {
        guard let root = sharedRoot else {
            skipNote("shared fixtures not found (../shared/fixtures or $BLCONVERT_SHARED_FIXTURES): skipping \(relative)")
            return nil
        }
        return root + "/" + relative
    }

    static func skipNote(_ message: String) {
        FileHandle.standardError.write(Data("SKIP: \(message)\n".utf8))
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("blconvert-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
