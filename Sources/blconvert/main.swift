import BLCommands

BLConvertCommand.main()
