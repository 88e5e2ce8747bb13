//! The device program: classic eBPF instructions, generated straight from a [`RuleSet`].
//!
//! The kernel passes `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! in R1, where access_type holds the device type in its low 16 bits and the access in its
//! high 16 bits. The program returns 1 to allow, 0 to deny.

use super::rules::{Access, DeviceKind, RuleSet};

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const LDX_MEM_W: u8 = 0x61;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// A jump to the end of the current rule's block, patched once the block is complete.
struct Block {
    insns: Vec<Insn>,
    jumps: Vec<usize>,
}

impl Block {
    fn skip_unless_equal_k(&mut self, reg: u8, value: i32) {
        self.jumps.push(self.insns.len());
        self.insns.push(insn(JMP_JNE_K, reg, 0, 0, value));
    }

    fn finish(mut self, result: i32) -> Vec<Insn> {
        self.insns.push(insn(ALU32_MOV_K, R0, 0, 0, result));
        self.insns.push(insn(EXIT, 0, 0, 0, 0));
        let len = self.insns.len();
        for at in self.jumps {
            // Offsets count from the instruction after the jump.
            self.insns[at].off = (len - at - 1) as i16;
        }
        self.insns
    }
}

/// Numbers above i32::MAX cannot be compared with a sign-extended immediate; the kernel's
/// device numbers (12-bit majors, 20-bit minors) never are.
fn imm(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub fn compile(set: &RuleSet) -> Vec<Insn> {
    let mut out = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in &set.exceptions {
        let mut block = Block {
            insns: Vec::new(),
            jumps: Vec::new(),
        };
        match rule.kind {
            DeviceKind::Char => block.skip_unless_equal_k(R2, DEV_CHAR),
            DeviceKind::Block => block.skip_unless_equal_k(R2, DEV_BLOCK),
            DeviceKind::All => {}
        }
        if rule.access != Access::ALL {
            // The access asked for must lie within the rule's.
            block.insns.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            block
                .insns
                .push(insn(ALU32_AND_K, R1, 0, 0, i32::from(rule.access.0)));
            block.jumps.push(block.insns.len());
            block.insns.push(insn(JMP_JNE_X, R1, R3, 0, 0));
        }
        if let Some(major) = rule.major {
            block.skip_unless_equal_k(R4, imm(major));
        }
        if let Some(minor) = rule.minor {
            block.skip_unless_equal_k(R5, imm(minor));
        }
        out.extend(block.finish(i32::from(!set.default_allow)));
    }
    out.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(set.default_allow)));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

#[cfg(test)]
mod tests {
    use super::super::rules::DeviceRule;
    use super::*;

    #[test]
    fn jumps_land_on_the_next_block() {
        let set = RuleSet {
            default_allow: false,
            exceptions: vec![DeviceRule {
                allow: true,
                kind: DeviceKind::Char,
                major: Some(1),
                minor: Some(3),
                access: Access(Access::READ | Access::WRITE),
            }],
        };
        let p = compile(&set);
        // 6 loads, 1 type + 3 access + 1 major + 1 minor checks, 2 to return, 2 default.
        assert_eq!(p.len(), 6 + 6 + 2 + 2);
        let block = &p[6..14];
        for (i, ins) in block.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                assert_eq!(
                    i + 1 + ins.off as usize,
                    8,
                    "jump at {i} must skip its block"
                );
            }
        }
        assert_eq!(p[12], insn(ALU32_MOV_K, R0, 0, 0, 1));
        assert_eq!(p[14], insn(ALU32_MOV_K, R0, 0, 0, 0));
    }
}
