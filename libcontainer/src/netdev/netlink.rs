//! A blocking rtnetlink socket with the few requests moving a device needs, built on the
//! rust-netlink crates (`netlink-sys` for the socket, `netlink-packet-route` for messages).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

const DUMP: u16 = NLM_F_DUMP;
const ACK: u16 = NLM_F_ACK;
const CREATE: u16 = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

/// A link as far as moving it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address, used to find the device again after a move.
    pub address: Option<Vec<u8>>,
    pub up: bool,
}

impl Netlink {
    /// A socket in the calling thread's current network namespace (it stays bound to that
    /// namespace afterwards).
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Send one request and collect its replies: up to NLMSG_DONE for a dump, up to the
    /// acknowledgement otherwise. A negative acknowledgement is the request's error.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[off..])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::Error(e) if e.code.is_none() => return Ok(out),
                        NetlinkPayload::Error(e) => return Err(e.to_io()),
                        NetlinkPayload::InnerMessage(r) => out.push(r),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    /// The link called `name`.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Link> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.one_link(m)
    }

    /// The link with index `index`.
    pub fn link_by_index(&mut self, index: u32) -> io::Result<Link> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.one_link(m)
    }

    fn one_link(&mut self, m: LinkMessage) -> io::Result<Link> {
        self.request(RouteNetlinkMessage::GetLink(m), ACK)?
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(link(&l)),
                _ => None,
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        Ok(self
            .request(RouteNetlinkMessage::GetLink(LinkMessage::default()), DUMP)?
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(link(&l)),
                _ => None,
            })
            .collect())
    }

    /// The addresses of link `index` that a move must carry over: permanent (not from
    /// DHCP/SLAAC) and of global scope, as the runtime-spec asks.
    pub fn kept_addresses(&mut self, index: u32) -> io::Result<Vec<AddressMessage>> {
        let all = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            DUMP,
        )?;
        Ok(all
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .filter(|a| a.header.scope == AddressScope::Universe && permanent(a))
            .collect())
    }

    /// Move link `index` into the network namespace `netns`, renamed to `name` if given (a
    /// `%d` in it lets the kernel pick a free number).
    pub fn move_link(
        &mut self,
        index: u32,
        netns: &impl AsFd,
        name: Option<&str>,
    ) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes
            .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        if let Some(n) = name {
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
        }
        self.request(RouteNetlinkMessage::SetLink(m), ACK)
            .map(|_| ())
    }

    /// Add an address taken from another namespace's dump to link `index`.
    pub fn add_address(&mut self, index: u32, from: &AddressMessage) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = from.header.family;
        m.header.prefix_len = from.header.prefix_len;
        m.header.scope = from.header.scope;
        m.header.index = index;
        m.header.flags = AddressHeaderFlags::empty();
        // Addresses, broadcast and the request-settable flags; the label (old name) and the
        // cache info (lifetimes) are left for the kernel to fill in.
        let settable = AddressFlags::Nodad
            | AddressFlags::Noprefixroute
            | AddressFlags::Homeaddress
            | AddressFlags::Managetempaddr
            | AddressFlags::Mcautojoin;
        for a in &from.attributes {
            match a {
                AddressAttribute::Address(_)
                | AddressAttribute::Local(_)
                | AddressAttribute::Broadcast(_)
                | AddressAttribute::Anycast(_) => m.attributes.push(a.clone()),
                AddressAttribute::Flags(f) => {
                    m.attributes.push(AddressAttribute::Flags(*f & settable))
                }
                _ => {}
            }
        }
        self.request(RouteNetlinkMessage::NewAddress(m), CREATE)
            .map(|_| ())
    }

    /// Bring link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), ACK)
            .map(|_| ())
    }
}

fn link(l: &LinkMessage) -> Link {
    let mut out = Link {
        index: l.header.index,
        name: String::new(),
        address: None,
        up: l.header.flags.contains(LinkFlags::Up),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::Address(a) => out.address = Some(a.clone()),
            _ => {}
        }
    }
    out
}

/// IFA_FLAGS (32 bits) when present, else the header's 8-bit flags.
fn permanent(a: &AddressMessage) -> bool {
    a.attributes
        .iter()
        .find_map(|x| match x {
            AddressAttribute::Flags(f) => Some(f.contains(AddressFlags::Permanent)),
            _ => None,
        })
        .unwrap_or_else(|| a.header.flags.contains(AddressHeaderFlags::Permanent))
}
