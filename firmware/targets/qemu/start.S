/* Bare-metal entry for QEMU `virt` rv32: set gp, sp, tp (picolibc TLS), copy .data/.tdata,
 * clear .tbss/.bss, run .init_array, install a trap handler, call main(). */
    .section .text.init.enter, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack
    la      tp, __tls_base
    la      t0, trap_entry
    csrw    mtvec, t0

    /* .data and .tdata: from their load address to RAM */
    la      a0, __data_start
    la      a1, __data_source
    la      a2, __data_source_end
1:  bgeu    a1, a2, 2f
    lbu     t0, 0(a1)
    sb      t0, 0(a0)
    addi    a0, a0, 1
    addi    a1, a1, 1
    j       1b
2:
    /* .tbss and .bss (contiguous in picolibc.ld) */
    la      a0, __bss_start
    la      a1, __bss_end
3:  bgeu    a0, a1, 4f
    sb      zero, 0(a0)
    addi    a0, a0, 1
    j       3b
4:
    /* constructors */
    la      s0, __init_array_start
    la      s1, __init_array_end
5:  bgeu    s0, s1, 6f
    lw      t0, 0(s0)
    jalr    t0
    addi    s0, s0, 4
    j       5b
6:
    call    main
    /* main returned: power off through the virt test device */
    li      t0, 0x100000
    li      t1, 0x5555
    sw      t1, 0(t0)
7:  wfi
    j       7b

/* Traps: a breakpoint is a semihosting call with semihosting disabled: skip the 4-byte
 * ebreak so the firmware keeps running without its debug channel. Anything else is a bug:
 * stop QEMU with exit status 1 (sifive_test FINISHER_FAIL) rather than hang silently. */
    .section .text.trap, "ax"
    .balign 4
trap_entry:
    addi    sp, sp, -8
    sw      t0, 0(sp)
    sw      t1, 4(sp)
    csrr    t0, mcause
    li      t1, 3
    bne     t0, t1, 8f
    csrr    t0, mepc
    addi    t0, t0, 4
    csrw    mepc, t0
    lw      t0, 0(sp)
    lw      t1, 4(sp)
    addi    sp, sp, 8
    mret
8:  li      t0, 0x100000
    li      t1, 0x13333
    sw      t1, 0(t0)
9:  wfi
    j       9b
