#include <tg_config.h>
#include <tg_core.h>

int
main(int argc, char **argv)
{
    return 0;
}
