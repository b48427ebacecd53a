import Foundation
import Testing
import BLTestSupport
@testable import BLCore

/// SHA-256: FIPS 180-4 vectors through both compression functions, the SHA-extension path against
/// the portable one on random data, and file digests against the manifests' sums.
@Suite struct SHA256Tests {
    static let implementations: [SHA256.Implementation] =
        SHA256.fastest == .shaExtensions ? [.portable, .shaExtensions] : [.portable]

    static func digest(_ bytes: [UInt8], _ impl: SHA256.Implementation, pieces: [Int] = []) -> String {
        var h = SHA256(implementation: impl)
        bytes.withUnsafeBytes { all in
            var start = 0
            for n in pieces where start < all.count {
                let end = min(start + n, all.count)
                h.update(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                start = end
            }
            h.update(UnsafeRawBufferPointer(rebasing: all[start...]))
        }
        return SHA256.hexString(h.finalize())
    }

    @Test func fipsVectorsWithEachImplementation() {
        if SHA256.fastest != .shaExtensions { print("SKIP: this CPU has no SHA extensions; testing the portable path only") }
        let vectors: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        ]
        for impl in Self.implementations {
            #expect(SHA256(implementation: impl).implementation == impl)
            for (text, expected) in vectors {
                #expect(Self.digest(Array(text.utf8), impl) == expected, "\(impl) '\(text)'")
                // Byte by byte: every block goes through the partial-block buffer.
                #expect(Self.digest(Array(text.utf8), impl, pieces: [Int](repeating: 1, count: text.utf8.count)) == expected)
            }
            let million = [UInt8](repeating: 0x61, count: 1_000_000)
            #expect(Self.digest(million, impl, pieces: [1, 63, 64, 65, 4096, 7]) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        }
    }

    @Test func shaExtensionsEqualPortableOnRandomLengths() throws {
        guard SHA256.fastest == .shaExtensions else {
            print("SKIP: this CPU has no SHA extensions")
            return
        }
        var rng = SeededRandom(state: 0x5EED)
        var lengths = Array(0...300) + [447, 448, 511, 512, 1023, 1024, 4095, 4096, 65_536, 1 << 20]
        for _ in 0..<200 { lengths.append(Int(rng.next() % 20_000)) }
        var compared = 0
        for n in lengths {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let pieces = (0..<4).map { _ in Int(rng.next() % 200) }
            let portable = Self.digest(bytes, .portable)
            #expect(Self.digest(bytes, .shaExtensions) == portable, "length \(n)")
            #expect(Self.digest(bytes, .shaExtensions, pieces: pieces) == portable, "length \(n) in pieces \(pieces)")
            compared += 1
        }
        #expect(compared == lengths.count)
        #expect(SHA256(implementation: .shaExtensions).implementation == .shaExtensions)
    }

    /// A file digest (mapped in chunks whose pages are released) equals the in-memory digest,
    /// also across chunk boundaries.
    @Test func fileDigestEqualsMemoryDigest() throws {
        var rng = SeededRandom(state: 99)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sha-test-\(getpid())-\(rng.next())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for n in [0, 1, 4 << 20, (4 << 20) + 1, (9 << 20) + 12_345] {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let path = dir.appendingPathComponent("f\(n)").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(try SHA256.hex(file: path) == Self.digest(bytes, .portable), "length \(n)")
        }
    }

    @Test(.enabled(if: TestData.hasShared)) func digestOfTheR50CheckpointMatchesItsManifest() throws {
        let model = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        let manifest = TestData.shared("r50-a2b4-f8x2-ssv2/manifest.json")
        let m = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: manifest))))
        let expected = try #require(m["sha256"]?["model.pth.tar"]?.stringValue)
        #expect(try SHA256.hex(file: model) == expected)
    }

    /// Released pages of a mapping read back unchanged, whole file or storage slices, page-aligned or not.
    @Test func releasedPagesReadBackUnchanged() throws {
        var rng = SeededRandom(state: 5)
        let n = 3 * 65_536 + 777
        let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("release-\(getpid())-\(rng.next())").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedFile(path: path)
        #expect(Array(file.bytes) == bytes)
        file.release(0..<n)
        #expect(Array(file.bytes) == bytes)
        file.release(100..<70_000)
        file.release(n..<n)
        file.release(5..<(n + 10))  // out of range: ignored
        #expect(Array(file.bytes) == bytes)
        let storage = file.storage(1234..<(n - 99))
        let t = try Tensor(dtype: .uint8, shape: [storage.count], storage: storage)
        storage.releasePages()
        storage.releasePages(10..<20_000)
        #expect(t.contiguousBytes() == Array(bytes[1234..<(n - 99)]))
        let owned = ByteStorage(copying: [1, 2, 3])
        owned.releasePages()
        #expect(Array(owned.bytes) == [1, 2, 3])
    }
}
