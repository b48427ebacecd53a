import BLCheckpoint
import BLCore
import BLVNet
import Foundation

/// The frame count T of a checkpoint, which its weights do not record (the reference code's
/// `groups`): decided here, in one place, by the rule every entry point documents.
///
/// 1. the caller's value (`--frames`), else
/// 2. a training checkpoint's `arch` string (`st2stv2-bLVNet-TAM-50-a2-b4-f8x2-...`), else
/// 3. the checkpoint's own file name, never the folders above it (`...-f8x2...` means T = 16);
///
/// otherwise loading fails with an error that asks for the frame count.
public enum FrameCount {
    /// T by the rule above; `path` is the checkpoint's path (only its last component is read).
    public static func resolve(explicit: Int?, arch: String?, path: String?) throws(BLConvertError) -> Int {
        if let explicit { return explicit }
        if let arch, let t = BLVNetNameHints(arch).frames { return t }
        if let path, let t = BLVNetNameHints(fileName(path)).frames { return t }
        throw BLConvertError(.invalidArgument, "the number of input frames T is not recorded in the weights, and neither a training checkpoint's 'arch' nor the file name gives it (a name with '-f8x2' means T = 16): pass --frames T (the reference 'groups', e.g. --frames 16)")
    }

    static func fileName(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }
}

/// A checkpoint read and mapped onto the bLVNet-TAM graph (not yet optimized).
package enum CheckpointImport {
    /// Opens `path`, reads its state dict (a training checkpoint's `state_dict` subtree) and maps
    /// it, T by `FrameCount.resolve`. Errors name the file.
    package static func importModel(path: String, frames: Int?) throws -> (ImportedModel, Checkpoint) {
        let checkpoint = try Checkpoint.open(path: path)
        return (try importModel(checkpoint: checkpoint, frames: frames), checkpoint)
    }

    /// Maps an opened checkpoint.
    package static func importModel(checkpoint: Checkpoint, frames: Int? = nil) throws -> ImportedModel {
        do {
            try ExpansionBudget.checkMaterialisable(checkpoint.tensors, fileSize: checkpoint.fileSize)
            return try importModel(tensors: checkpoint.stateDict().tensors, frames: frames,
                                   arch: checkpoint.entry("arch")?.stringValue, path: checkpoint.path)
        } catch let e as BLError {
            throw e.inFile(checkpoint.path)
        } catch let e as BLConvertError {
            throw BLError(.invalidArgument, e.message, file: checkpoint.path)
        }
    }

    /// Maps tensors named as in a checkpoint: T by `FrameCount.resolve(explicit:arch:path:)`; beta
    /// (informational) from `arch`, else anywhere in `path` (a folder may name it).
    package static func importModel(tensors: [(name: String, tensor: Tensor)], frames: Int? = nil,
                                    arch: String? = nil, path: String? = nil) throws -> ImportedModel {
        let t: Int
        do {
            t = try FrameCount.resolve(explicit: frames, arch: arch, path: path)
        } catch {
            throw BLError(.invalidArgument, error.message)
        }
        if let frames {
            let named = [("the checkpoint's arch '\(arch ?? "")'", arch.flatMap { BLVNetNameHints($0).frames }),
                         ("the file name", path.flatMap { BLVNetNameHints(FrameCount.fileName($0)).frames })]
            if let found = named.first(where: { $0.1 != nil }), let other = found.1, other != frames {
                let source = found.0
                Warnings.emit("--frames \(frames) differs from the T = \(other) that \(source) names; using \(frames) as given")
            }
        }
        return try BLVNetImporter.importModel(tensors: tensors, frames: t, nameHints: [arch, path].compactMap { $0 })
    }
}
