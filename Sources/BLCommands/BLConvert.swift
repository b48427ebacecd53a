import ArgumentParser
import BLCore

/// The `blconvert` command: bLVNet-TAM checkpoints in, a verified Swift-native model out.
public struct BLConvert: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "blconvert",
        abstract: "Convert bLVNet-TAM PyTorch checkpoints into a Swift-native CPU model and prove parity.",
        discussion: """
        Typical flow:
          blconvert inspect model.pth.tar              what is in a checkpoint (read safely, nothing executed)
          blconvert import model.pth.tar -o m.blc --frames 16
          blconvert verify m.blc clip0.safetensors     parity against reference clips
          blconvert run m.blc frames/ --top 5          predictions for a folder of frames or a clip tensor
          blconvert graph m.blc --input 224x224        the graph with FLOPs and memory
          blconvert bench m.blc                        speed

        Exit status: 0 success, 1 verification failed, 2 bad input (unreadable, corrupt or refused file,
        wrong arguments).
        """,
        version: BLConvertVersion.string,
        subcommands: [Inspect.self, Extract.self, Import.self, GraphCommand.self, Verify.self, Run.self, Bench.self]
    )
}

public enum BLConvertVersion {
    public static let string = "0.1.0"
}
