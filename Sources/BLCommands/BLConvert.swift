import ArgumentParser
public struct BLConvert: ParsableCommand { public init() {}
  public static let configuration = CommandConfiguration(commandName: "blconvert") }
