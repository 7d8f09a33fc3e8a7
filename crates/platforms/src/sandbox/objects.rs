//! Telegram objects as the sandbox world answers them (and as tests script the fake server), with
//! every field nobody reads left at its empty value.

use grammers_tl_types as tl;

pub fn user(id: i64, access_hash: i64, username: Option<&str>) -> tl::enums::User {
    tl::enums::User::User(tl::types::User {
        is_self: false,
        contact: false,
        mutual_contact: false,
        deleted: false,
        bot: false,
        bot_chat_history: false,
        bot_nochats: false,
        verified: false,
        restricted: false,
        min: false,
        bot_inline_geo: false,
        support: false,
        scam: false,
        apply_min_photo: false,
        fake: false,
        bot_attach_menu: false,
        premium: false,
        attach_menu_enabled: false,
        bot_can_edit: false,
        close_friend: false,
        stories_hidden: false,
        stories_unavailable: false,
        contact_require_premium: false,
        bot_business: false,
        bot_has_main_app: false,
        bot_forum_view: false,
        bot_forum_can_manage_topics: false,
        bot_can_manage_bots: false,
        bot_guestchat: false,
        bot_guard: false,
        id,
        access_hash: Some(access_hash),
        first_name: Some(format!("User{id}")),
        last_name: None,
        username: username.map(str::to_owned),
        phone: None,
        photo: None,
        status: None,
        bot_info_version: None,
        restriction_reason: None,
        bot_inline_placeholder: None,
        lang_code: None,
        emoji_status: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        bot_active_users: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_community_id: None,
    })
}

pub fn with_user(u: tl::enums::User, f: impl FnOnce(&mut tl::types::User)) -> tl::enums::User {
    let tl::enums::User::User(mut u) = u else {
        unreachable!()
    };
    f(&mut u);
    tl::enums::User::User(u)
}

/// What this account may do in a chat.
#[derive(Clone, Copy, Default)]
pub struct Rights {
    pub creator: bool,
    pub left: bool,
    /// Admin with the right to add members.
    pub admin_invite: bool,
    /// Admin without it.
    pub admin_other: bool,
    /// Members are banned from adding people (the chat's default rights).
    pub members_may_not_invite: bool,
}

pub fn channel(id: i64, access_hash: i64, broadcast: bool, rights: Rights) -> tl::enums::Chat {
    tl::enums::Chat::Channel(tl::types::Channel {
        creator: rights.creator,
        left: rights.left,
        broadcast,
        verified: false,
        megagroup: !broadcast,
        restricted: false,
        signatures: false,
        min: false,
        scam: false,
        has_link: false,
        has_geo: false,
        slowmode_enabled: false,
        call_active: false,
        call_not_empty: false,
        fake: false,
        gigagroup: false,
        noforwards: false,
        join_to_send: false,
        join_request: false,
        forum: false,
        stories_hidden: false,
        stories_hidden_min: false,
        stories_unavailable: false,
        signature_profiles: false,
        autotranslation: false,
        broadcast_messages_allowed: false,
        monoforum: false,
        forum_tabs: false,
        id,
        access_hash: Some(access_hash),
        title: format!("Chat {id}"),
        username: None,
        photo: tl::enums::ChatPhoto::Empty,
        date: 0,
        restriction_reason: None,
        admin_rights: admin_rights(rights),
        banned_rights: None,
        default_banned_rights: default_banned(rights),
        participants_count: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        emoji_status: None,
        level: None,
        subscription_until_date: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_monoforum_id: None,
        linked_community_id: None,
    })
}

pub fn with_channel(c: tl::enums::Chat, f: impl FnOnce(&mut tl::types::Channel)) -> tl::enums::Chat {
    let tl::enums::Chat::Channel(mut c) = c else {
        unreachable!()
    };
    f(&mut c);
    tl::enums::Chat::Channel(c)
}

pub fn basic_group(id: i64, members: i32, rights: Rights) -> tl::enums::Chat {
    tl::enums::Chat::Chat(tl::types::Chat {
        creator: rights.creator,
        left: rights.left,
        deactivated: false,
        call_active: false,
        call_not_empty: false,
        noforwards: false,
        id,
        title: format!("Group {id}"),
        photo: tl::enums::ChatPhoto::Empty,
        participants_count: members,
        date: 0,
        version: 1,
        migrated_to: None,
        admin_rights: admin_rights(rights),
        default_banned_rights: default_banned(rights),
    })
}

fn admin_rights(r: Rights) -> Option<tl::enums::ChatAdminRights> {
    (r.admin_invite || r.admin_other).then_some({
        tl::enums::ChatAdminRights::Rights(tl::types::ChatAdminRights {
            change_info: false,
            post_messages: r.admin_other,
            edit_messages: false,
            delete_messages: r.admin_other,
            ban_users: false,
            invite_users: r.admin_invite,
            pin_messages: false,
            add_admins: false,
            anonymous: false,
            manage_call: false,
            other: false,
            manage_topics: false,
            post_stories: false,
            edit_stories: false,
            delete_stories: false,
            manage_direct_messages: false,
            manage_ranks: false,
            manage_linked_peers: false,
            manage_welcome_messages: false,
        })
    })
}

fn default_banned(r: Rights) -> Option<tl::enums::ChatBannedRights> {
    Some(tl::enums::ChatBannedRights::Rights(tl::types::ChatBannedRights {
        view_messages: false,
        send_messages: false,
        send_media: false,
        send_stickers: false,
        send_gifs: false,
        send_games: false,
        send_inline: false,
        embed_links: false,
        send_polls: false,
        change_info: true,
        invite_users: r.members_may_not_invite,
        pin_messages: true,
        manage_topics: false,
        send_photos: false,
        send_videos: false,
        send_roundvideos: false,
        send_audios: false,
        send_voices: false,
        send_docs: false,
        send_plain: false,
        edit_rank: false,
        send_reactions: false,
        manage_linked_peers: false,
        until_date: 0,
    }))
}

pub fn updates_empty() -> tl::enums::Updates {
    tl::enums::Updates::Updates(tl::types::Updates {
        updates: vec![],
        users: vec![],
        chats: vec![],
        date: 0,
        seq: 0,
    })
}

pub fn invited(missing: Vec<(i64, bool, bool)>) -> tl::enums::messages::InvitedUsers {
    tl::enums::messages::InvitedUsers::Users(tl::types::messages::InvitedUsers {
        updates: updates_empty(),
        missing_invitees: missing
            .into_iter()
            .map(|(user_id, premium_would_allow_invite, premium_required_for_pm)| {
                tl::enums::MissingInvitee::Invitee(tl::types::MissingInvitee {
                    premium_would_allow_invite,
                    premium_required_for_pm,
                    user_id,
                })
            })
            .collect(),
    })
}

pub fn resolved_user(u: tl::enums::User) -> tl::enums::contacts::ResolvedPeer {
    let id = match &u {
        tl::enums::User::User(u) => u.id,
        tl::enums::User::Empty(u) => u.id,
    };
    tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
        peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: id }),
        chats: vec![],
        users: vec![u],
    })
}

pub fn resolved_chat(c: tl::enums::Chat) -> tl::enums::contacts::ResolvedPeer {
    let peer = match &c {
        tl::enums::Chat::Chat(c) => tl::enums::Peer::Chat(tl::types::PeerChat { chat_id: c.id }),
        other => tl::enums::Peer::Channel(tl::types::PeerChannel {
            channel_id: crate::telegram::results::chat_id_of(other),
        }),
    };
    tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
        peer,
        chats: vec![c],
        users: vec![],
    })
}

pub fn imported(
    imported: Vec<(i64, i64)>,
    retry: Vec<i64>,
    users: Vec<tl::enums::User>,
) -> tl::enums::contacts::ImportedContacts {
    tl::enums::contacts::ImportedContacts::Contacts(tl::types::contacts::ImportedContacts {
        imported: imported
            .into_iter()
            .map(|(user_id, client_id)| {
                tl::enums::ImportedContact::Contact(tl::types::ImportedContact { user_id, client_id })
            })
            .collect(),
        popular_invites: vec![],
        retry_contacts: retry,
        users,
    })
}

pub fn channel_full(id: i64, members: i32) -> tl::types::ChannelFull {
    tl::types::ChannelFull {
        can_view_participants: false,
        can_set_username: false,
        can_set_stickers: false,
        hidden_prehistory: false,
        can_set_location: false,
        has_scheduled: false,
        can_view_stats: false,
        blocked: false,
        can_delete_channel: false,
        antispam: false,
        participants_hidden: false,
        translations_disabled: false,
        stories_pinned_available: false,
        view_forum_as_messages: false,
        restricted_sponsored: false,
        can_view_revenue: false,
        paid_media_allowed: false,
        can_view_stars_revenue: false,
        paid_reactions_available: false,
        stargifts_available: false,
        paid_messages_available: false,
        has_welcome_messages: false,
        id,
        about: String::new(),
        participants_count: Some(members),
        admins_count: None,
        kicked_count: None,
        banned_count: None,
        online_count: None,
        read_inbox_max_id: 0,
        read_outbox_max_id: 0,
        unread_count: 0,
        chat_photo: tl::enums::Photo::Empty(tl::types::PhotoEmpty { id: 0 }),
        notify_settings: tl::enums::PeerNotifySettings::Settings(tl::types::PeerNotifySettings {
            show_previews: None,
            silent: None,
            mute_until: None,
            ios_sound: None,
            android_sound: None,
            other_sound: None,
            stories_muted: None,
            stories_hide_sender: None,
            stories_ios_sound: None,
            stories_android_sound: None,
            stories_other_sound: None,
        }),
        exported_invite: None,
        bot_info: vec![],
        migrated_from_chat_id: None,
        migrated_from_max_id: None,
        pinned_msg_id: None,
        stickerset: None,
        available_min_id: None,
        folder_id: None,
        linked_chat_id: None,
        location: None,
        slowmode_seconds: None,
        slowmode_next_send_date: None,
        stats_dc: None,
        pts: 0,
        call: None,
        ttl_period: None,
        pending_suggestions: None,
        groupcall_default_join_as: None,
        theme_emoticon: None,
        requests_pending: None,
        recent_requesters: None,
        default_send_as: None,
        available_reactions: None,
        reactions_limit: None,
        stories: None,
        wallpaper: None,
        boosts_applied: None,
        boosts_unrestrict: None,
        emojiset: None,
        bot_verification: None,
        stargifts_count: None,
        send_paid_messages_stars: None,
        main_tab: None,
        guard_bot_id: None,
    }
}

/// What `messages.sendMessage` answers for a delivered message.
pub fn sent_message(id: i32, date: i32) -> tl::enums::Updates {
    tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
        out: true,
        id,
        pts: id,
        pts_count: 1,
        date,
        media: None,
        entities: None,
        ttl_period: None,
    })
}

pub fn chats(chats: Vec<tl::enums::Chat>) -> tl::enums::messages::Chats {
    tl::enums::messages::Chats::Chats(tl::types::messages::Chats { chats })
}

pub fn full_channel(full: tl::types::ChannelFull) -> tl::enums::messages::ChatFull {
    tl::enums::messages::ChatFull::Full(tl::types::messages::ChatFull {
        full_chat: tl::enums::ChatFull::ChannelFull(full),
        chats: vec![],
        users: vec![],
    })
}

/// `messages.checkChatInvite`'s answer for a chat the account is not in.
pub fn chat_invite(title: &str, members: i32) -> tl::enums::ChatInvite {
    tl::enums::ChatInvite::Invite(tl::types::ChatInvite {
        channel: true,
        broadcast: false,
        public: false,
        megagroup: true,
        request_needed: false,
        verified: false,
        scam: false,
        fake: false,
        can_refulfill_subscription: false,
        title: title.to_owned(),
        about: None,
        photo: tl::enums::Photo::Empty(tl::types::PhotoEmpty { id: 0 }),
        participants_count: members,
        participants: None,
        color: 0,
        subscription_pricing: None,
        subscription_form_id: None,
        bot_verification: None,
    })
}
