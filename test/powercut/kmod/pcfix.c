// SPDX-License-Identifier: GPL-2.0
/*
 * pcfix: make the phram "flash" MTD acceptable to UBI.
 *
 * phram in Linux 6.1 leaves mtd->writebufsize at 0, and UBI refuses such a
 * device at attach ("bad write buffer size 0"). Load this module after
 * phram and before ubiattach: it sets the write buffer size to PAGE_SIZE
 * (a power of two, a multiple of phram's 1-byte write size) and keeps no
 * reference to the device. The harness builds it against the installed
 * kernel's headers; it is never part of the product.
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/mtd/mtd.h>

static char *name = "flash";
module_param(name, charp, 0444);
MODULE_PARM_DESC(name, "name of the MTD device to fix (default \"flash\")");

static int __init pcfix_init(void)
{
	struct mtd_info *mtd = get_mtd_device_nm(name);

	if (IS_ERR(mtd)) {
		pr_err("pcfix: no MTD device named %s: %ld\n", name, PTR_ERR(mtd));
		return PTR_ERR(mtd);
	}
	if (mtd->writebufsize == 0)
		mtd->writebufsize = PAGE_SIZE;
	pr_info("pcfix: %s writebufsize %u\n", name, mtd->writebufsize);
	put_mtd_device(mtd);
	return 0;
}

static void __exit pcfix_exit(void)
{
}

module_init(pcfix_init);
module_exit(pcfix_exit);
MODULE_DESCRIPTION("power-cut harness: set phram's write buffer size for UBI");
MODULE_LICENSE("GPL");
