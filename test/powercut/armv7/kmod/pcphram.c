// SPDX-License-Identifier: GPL-2.0
/*
 * pcphram: the ARMv7 power-cut guest's "flash", a stand-in for phram.
 *
 * Debian's armmp kernel is built without phram (CONFIG_MTD_PHRAM is not
 * set), and without what would let physmap drive qemu's CFI pflash
 * (CONFIG_MTD_CFI and CONFIG_MTD_PHYSMAP_OF are not set; see ../README.md).
 * This module does what phram does, with phram's own parameter so the
 * x86 guest's /init runs unchanged:
 *
 *   insmod phram.ko phram=NAME,START,LEN,ERASESIZE
 *
 * maps the physical range START..START+LEN-1 (the BAR of qemu's
 * ivshmem-plain device, whose memory is a host file) and registers it as
 * an MTD_RAM device NAME of LEN bytes, ERASESIZE erase blocks and 1-byte
 * writes. Reads and writes are plain copies, an erase fills with 0xff. The
 * mapping is normal memory (write-combining, not device memory: UBI reads
 * and writes at any alignment), and under TCG every store the guest
 * completes is in the host file at once, so SIGKILL of qemu is a clean
 * power cut. Like phram it leaves writebufsize at 0: pcfix.ko (../../kmod)
 * sets it, as on x86. Test harness only; never part of the product.
 */
#include <linux/err.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/mtd/mtd.h>
#include <linux/string.h>

static char *phram;
module_param(phram, charp, 0444);
MODULE_PARM_DESC(phram, "NAME,START,LEN,ERASESIZE (as phram's phram= parameter)");

static struct mtd_info pc_mtd;
static char pc_name[32];
static void *pc_base;

static int pc_erase(struct mtd_info *mtd, struct erase_info *instr)
{
	memset(pc_base + instr->addr, 0xff, instr->len);
	return 0;
}

static int pc_read(struct mtd_info *mtd, loff_t from, size_t len,
		   size_t *retlen, u_char *buf)
{
	memcpy(buf, pc_base + from, len);
	*retlen = len;
	return 0;
}

static int pc_write(struct mtd_info *mtd, loff_t to, size_t len,
		    size_t *retlen, const u_char *buf)
{
	memcpy(pc_base + to, buf, len);
	*retlen = len;
	return 0;
}

static int __init pc_init(void)
{
	char buf[128], *p = buf, *tok[4];
	u64 start, len, erase;
	u32 rem = 0;
	int i, err;

	if (!phram || strscpy(buf, phram, sizeof(buf)) < 0) {
		pr_err("pcphram: phram=NAME,START,LEN,ERASESIZE is required\n");
		return -EINVAL;
	}
	for (i = 0; i < 4; i++) {
		tok[i] = strsep(&p, ",");
		if (!tok[i] || !*tok[i]) {
			pr_err("pcphram: bad phram=%s\n", phram);
			return -EINVAL;
		}
	}
	if (kstrtou64(tok[1], 0, &start) || kstrtou64(tok[2], 0, &len) ||
	    kstrtou64(tok[3], 0, &erase) || !len || !erase ||
	    erase > U32_MAX || (div_u64_rem(len, erase, &rem), rem)) {
		pr_err("pcphram: bad numbers in phram=%s\n", phram);
		return -EINVAL;
	}
	strscpy(pc_name, tok[0], sizeof(pc_name));
	pc_base = memremap(start, len, MEMREMAP_WC);
	if (!pc_base) {
		pr_err("pcphram: cannot map %llx+%llx\n", start, len);
		return -EIO;
	}
	pc_mtd.name = pc_name;
	pc_mtd.type = MTD_RAM;
	pc_mtd.flags = MTD_CAP_RAM;
	pc_mtd.size = len;
	pc_mtd.erasesize = erase;
	pc_mtd.writesize = 1;
	pc_mtd._erase = pc_erase;
	pc_mtd._read = pc_read;
	pc_mtd._write = pc_write;
	pc_mtd.owner = THIS_MODULE;
	err = mtd_device_register(&pc_mtd, NULL, 0);
	if (err) {
		memunmap(pc_base);
		return err;
	}
	pr_info("pcphram: %s: %llu bytes at %llx, erase size %llu\n",
		pc_name, len, start, erase);
	return 0;
}

static void __exit pc_exit(void)
{
	mtd_device_unregister(&pc_mtd);
	memunmap(pc_base);
}

module_init(pc_init);
module_exit(pc_exit);
MODULE_DESCRIPTION("power-cut harness (ARMv7): phram's MTD over a PCI BAR");
MODULE_LICENSE("GPL");
