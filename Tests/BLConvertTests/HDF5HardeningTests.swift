import CHDF5
import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLHDF5
@testable import BLHDF5Library

/// Issue 12, items 10, 16 and 23: HDF5 files built here through libhdf5.
@Suite struct HDF5HardeningTests {
    static func create(_ path: String, _ body: (hid_t) throws -> Void) throws {
        try HDF5Library.withLock {
            let fid = H5Fcreate(path, blc_h5f_acc_trunc(), blc_h5p_default(), blc_h5p_default())
            try #require(fid >= 0)
            defer { H5Fclose(fid) }
            try body(fid)
        }
    }

    @Test func manyAttributesAreReadInOnePass() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/attrs.h5"
        let n = 20_000
        try Self.create(path) { fid in
            for i in 0..<n {
                var v = Int64(i)
                try HDF5Tests.writeAttribute(fid, String(format: "a%05d", i), blc_h5t_native_int64(), count: nil, bytes: &v)
            }
        }
        let start = MonotonicClock.seconds()
        let c = try HDF5Reader.read(path: path)
        let seconds = MonotonicClock.seconds() - start
        #expect(seconds < 15, "\(seconds) s")
        print("HDF5 group with \(n) attributes read in \(Format3.s(seconds)) s")
        #expect(c.attributes.count == n)
        #expect(c.attributes.first?.name == "attr.a00000" && c.attributes.last?.value.intValue == Int64(n - 1))
    }

    @Test func unwrittenDatasetsCountWhatTheFileStores() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fill.h5"
        try Self.create(path) { fid in
            // 2 GiB of float64 declared, chunked, never written: the file stores nothing of it.
            let dcpl = H5Pcreate(blc_h5p_dataset_create()); defer { H5Pclose(dcpl) }
            var chunk: [hsize_t] = [1024, 1024]
            _ = H5Pset_chunk(dcpl, 2, &chunk)
            try HDF5Tests.writeDataset(fid, "empty", blc_h5t_native_double(), dims: [16384, 16384], bytes: [], dcpl: dcpl)
            // Enough other data that the whole-file budget alone would let it through.
            try HDF5Tests.writeDataset(fid, "pad", blc_h5t_native_uint8(), dims: [3 << 20], bytes: [UInt8](repeating: 7, count: 3 << 20))
        }
        let e = try #require(throws: BLError.self) { _ = try HDF5Reader.read(path: path) }
        #expect(e.message.contains("never written"), "\(e)")
    }

    @Test func softAndExternalLinksAreListedAsSkipped() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/links.h5"
        try Self.create(path) { fid in
            try HDF5Tests.writeDataset(fid, "w", blc_h5t_native_float(), dims: [2], bytes: HDF5Tests.le([Float(1).bitPattern, Float(2).bitPattern]))
            #expect(H5Lcreate_soft("/w", fid, "alias", blc_h5p_default(), blc_h5p_default()) >= 0)
            #expect(H5Lcreate_external("other.h5", "/secret", fid, "outside", blc_h5p_default(), blc_h5p_default()) >= 0)
        }
        let c = try HDF5Reader.read(path: path)
        #expect(c.tensors.map(\.name) == ["w"])
        let skipped = Dictionary(c.skipped.map { ($0.name, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(skipped["alias"] == "soft link to /w, not followed", "\(c.skipped)")
        #expect(skipped["outside"] == "external link to other.h5:/secret, not followed", "\(c.skipped)")
    }

    @Test func libhdf5ErrorsLeadWithOneLine() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = [UInt8](try #require(FileManager.default.contents(atPath: TestData.fixture("parsers/tensors_flat.h5"))))
        _ = FileManager.default.createFile(atPath: dir + "/cut.h5", contents: Data(good[..<1000]))
        let e = try #require(throws: BLError.self) { _ = try HDF5Reader.read(path: dir + "/cut.h5") }
        let first = e.description.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.count < 300 && first.contains("libhdf5: "), "\(e)")
        #expect(first.contains("cut.h5"))
    }
}
