use statelesse::SseEvent;

#[derive(SseEvent)]
#[sse(domain = "game")]
pub union Bits {
    pub int: u32,
    pub float: f32,
}

fn main() {}
