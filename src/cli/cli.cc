// placeholder, replaced by the micedb command
