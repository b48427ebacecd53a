import BLCore
import BLCheckpoint

extension BLVNetImporter {
    /// Maps an opened checkpoint: its state dict (a training checkpoint's `state_dict` subtree),
    /// `T` from `frames`, else its `arch` entry, else its file name.
    package static func importModel(checkpoint: Checkpoint, frames: Int? = nil) throws -> ImportedModel {
        do {
            return try importModel(tensors: checkpoint.stateDict().tensors, frames: frames,
                                   sourceName: checkpoint.path, arch: checkpoint.entry("arch")?.stringValue)
        } catch let e as BLError {
            throw e.inFile(checkpoint.path)
        }
    }
}
