//! The upgrade's sub-protocol negotiation (apimachinery's httpstream.Handshake): the client
//! lists the protocols it speaks in X-Stream-Protocol-Version (several headers, or commas),
//! the server answers with the first of the client's it also speaks.

pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
pub const ACCEPTED_HEADER: &str = "X-Accepted-Stream-Protocol-Versions";

/// The client's protocols, in its order of preference.
pub fn client_protocols<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The first of the client's protocols the server speaks.
pub fn negotiate<'s>(client: &[String], server: &[&'s str]) -> Option<&'s str> {
    client
        .iter()
        .find_map(|c| server.iter().find(|s| **s == c.as_str()).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_order_wins_among_shared_protocols() {
        // client-go 1.29's NewSPDYExecutor offers v5 first; the kubelet of 1.29 lacks it.
        let client = client_protocols([
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "v3.channel.k8s.io, v2.channel.k8s.io",
            "channel.k8s.io",
        ]);
        assert_eq!(client.len(), 5);
        let server = [
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
            "v2.channel.k8s.io",
            "channel.k8s.io",
        ];
        assert_eq!(negotiate(&client, &server), Some("v4.channel.k8s.io"));
        let old = client_protocols(["v2.channel.k8s.io,channel.k8s.io"]);
        assert_eq!(negotiate(&old, &server), Some("v2.channel.k8s.io"));
        assert_eq!(negotiate(&client_protocols(["x"]), &server), None);
        assert_eq!(negotiate(&[], &server), None);
    }
}
