#include "cli/commands.h"

int main(int argc, char** argv) { return micedb::cli::Main(argc, argv); }
