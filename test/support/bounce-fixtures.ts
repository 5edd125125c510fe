/*
 * Reports as real mail systems write them, modelled on samples from Postfix, Microsoft Exchange /
 * Outlook.com, Gmail and a Yahoo-style feedback loop: what comes back to the VERP address of a delivery
 * (the listener reads the envelope recipient; the copies of it in these bodies are for realism only).
 * Line ends are CRLF, as they travel over SMTP.
 */

export interface Original {
  deliveryId: string;
  /** the address the message was sent to */
  recipient: string;
  /** the bounce domain of the VERP address */
  domain?: string;
}

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const verp = (o: Original) => `bounce+${o.deliveryId}@${o.domain ?? 'localhost'}`;
const originalHeaders = (o: Original, subject = 'Confirm your address') =>
  `Return-Path: <${verp(o)}>
From: "Sender Org" <no-reply@${o.domain ?? 'localhost'}>
To: ${o.recipient}
Subject: ${subject}
Message-ID: <${o.deliveryId}@${o.domain ?? 'localhost'}>
X-Envoi-Delivery: ${o.deliveryId}
Date: Tue, 24 Nov 2026 09:12:00 +0000
MIME-Version: 1.0`;

/** Postfix's bounce(8) message: notification, delivery report, undelivered headers. */
export function postfixBounce(o: Original, opts: { action?: string; status?: string; diagnostic?: string } = {}): string {
  const status = opts.status ?? '5.1.1';
  const diagnostic =
    opts.diagnostic ?? `smtp; 550 5.1.1 <${o.recipient}>: Recipient address\n    rejected: User unknown in virtual mailbox table`;
  return crlf(`Return-Path: <>
Received: by mx1.sender.example (Postfix)
	id 4Xk2Lq1Zz9z9sWR; Tue, 24 Nov 2026 10:12:03 +0100 (CET)
Date: Tue, 24 Nov 2026 10:12:03 +0100 (CET)
From: MAILER-DAEMON@mx1.sender.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ${verp(o)}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Xk2Lq1Zz9z9sWR.1795511523/mx1.sender.example"
Content-Transfer-Encoding: 8bit
Message-Id: <4Xk2Lq1Zz9z9sWR@mx1.sender.example>

This is a MIME-encapsulated message.

--4Xk2Lq1Zz9z9sWR.1795511523/mx1.sender.example
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx1.sender.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<${o.recipient}>: host mail.example.com[192.0.2.10] said: 550 5.1.1
    <${o.recipient}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4Xk2Lq1Zz9z9sWR.1795511523/mx1.sender.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.sender.example
X-Postfix-Queue-ID: 4Xk2Lq1Zz9z9sWR
X-Postfix-Sender: rfc822; ${verp(o)}
Arrival-Date: Tue, 24 Nov 2026 10:12:01 +0100 (CET)

Final-Recipient: rfc822; ${o.recipient}
Original-Recipient: rfc822;${o.recipient}
Action: ${opts.action ?? 'failed'}
Status: ${status}
Remote-MTA: dns; mail.example.com
Diagnostic-Code: ${diagnostic}

--4Xk2Lq1Zz9z9sWR.1795511523/mx1.sender.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

${originalHeaders(o)}

--4Xk2Lq1Zz9z9sWR.1795511523/mx1.sender.example--
`);
}

/** Postfix's delay warning ("Delayed Mail (still being retried)"). */
export function postfixDelayed(o: Original): string {
  return crlf(`Return-Path: <>
Date: Tue, 24 Nov 2026 14:12:03 +0100 (CET)
From: MAILER-DAEMON@mx1.sender.example (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: ${verp(o)}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="5Yq3Mr2AA0z9sWS.1795525923/mx1.sender.example"
Message-Id: <5Yq3Mr2AA0z9sWS@mx1.sender.example>

This is a MIME-encapsulated message.

--5Yq3Mr2AA0z9sWS.1795525923/mx1.sender.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.sender.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than 4 hour(s).
It will be retried until it is 5 day(s) old.

<${o.recipient}>: connect to mail.example.com[192.0.2.10]:25: Connection
    timed out

--5Yq3Mr2AA0z9sWS.1795525923/mx1.sender.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.sender.example
X-Postfix-Queue-ID: 5Yq3Mr2AA0z9sWS
X-Postfix-Sender: rfc822; ${verp(o)}
Arrival-Date: Tue, 24 Nov 2026 10:12:01 +0100 (CET)

Final-Recipient: rfc822; ${o.recipient}
Original-Recipient: rfc822;${o.recipient}
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mail.example.com[192.0.2.10]:25:
    Connection timed out
Will-Retry-Until: Sun, 29 Nov 2026 10:12:01 +0100 (CET)

--5Yq3Mr2AA0z9sWS.1795525923/mx1.sender.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

${originalHeaders(o)}

--5Yq3Mr2AA0z9sWS.1795525923/mx1.sender.example--
`);
}

/** An Exchange / Outlook.com non-delivery report: HTML and text notification, report, the original. */
export function exchangeBounce(o: Original, opts: { status?: string; diagnostic?: string } = {}): string {
  const status = opts.status ?? '5.1.10';
  const diagnostic = opts.diagnostic ?? 'smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup';
  return crlf(`Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6::1)
 by AM0PR01MB5678.eurprd01.prod.exchangelabs.com with Microsoft SMTP Server;
 Tue, 24 Nov 2026 09:12:05 +0000
MIME-Version: 1.0
From: <postmaster@contoso.example>
To: <${verp(o)}>
Date: Tue, 24 Nov 2026 09:12:05 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="b0f1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <a1b2c3d4-0000-4000-8000-aabbccddeeff@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
In-Reply-To: <${o.deliveryId}@${o.domain ?? 'localhost'}>
References: <${o.deliveryId}@${o.domain ?? 'localhost'}>
Thread-Topic: Confirm your address
Subject: Undeliverable: Confirm your address
Auto-Submitted: auto-replied

--b0f1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"

--5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to ${o.recipient} couldn't be delivered.
${o.recipient.split('@')[0]} wasn't found at ${o.recipient.split('@')[1]}.
sender  Office 365  ${o.recipient.split('@')[0]}
Action Required                                                  Recipient
Unknown To address

--5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
=3Dus-ascii"></head><body><p>Your message to <a href=3D"mailto:${o.recipient}">=
${o.recipient}</a> couldn't be delivered.</p><p><b>${o.recipient.split('@')[0]}</b> wasn=
't found at ${o.recipient.split('@')[1]}.</p></body></html>

--5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9--

--b0f1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;mx1.sender.example
Arrival-Date: Tue, 24 Nov 2026 09:12:04 +0000

Original-Recipient: rfc822;${o.recipient}
Final-Recipient: rfc822;${o.recipient}
Action: failed
Status: ${status}
Diagnostic-Code: ${diagnostic}

--b0f1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d
Content-Type: message/rfc822

${originalHeaders(o)}
Content-Type: text/plain; charset=utf-8

Hello, please confirm your address.

--b0f1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d--
`);
}

/** Gmail's "Address not found" notice: the report's diagnostic repeats the code on every line. */
export function gmailBounce(o: Original): string {
  return crlf(`Return-Path: <>
Received: by 2002:a05:6a10:1234:b0:5a1:abcd:ef01 with SMTP id x12csp123456pxa;
        Tue, 24 Nov 2026 01:12:04 -0800 (PST)
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: ${verp(o)}
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: <${o.deliveryId}@${o.domain ?? 'localhost'}>
In-Reply-To: <${o.deliveryId}@${o.domain ?? 'localhost'}>
X-Failed-Recipients: ${o.recipient}
Message-ID: <67a1b2c3.050a0220.1a2b3c.0000.GMR@mx.google.com>
Date: Tue, 24 Nov 2026 01:12:04 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3d4e5f6a7b8"; report-type=delivery-status

--000000000000a1b2c3d4e5f6a7b8
Content-Type: multipart/related; boundary="000000000000a1b2c3d4e5f6a7c9"

--000000000000a1b2c3d4e5f6a7c9
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6a7d0"

--000000000000a1b2c3d4e5f6a7d0
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to ${o.recipient} because the address couldn't be found, or is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response was:

The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser

--000000000000a1b2c3d4e5f6a7d0
Content-Type: text/html; charset="UTF-8"

<html><body><h1>Address not found</h1><p>Your message wasn't delivered to <a>${o.recipient}</a>.</p></body></html>

--000000000000a1b2c3d4e5f6a7d0--
--000000000000a1b2c3d4e5f6a7c9--
--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: Tue, 24 Nov 2026 01:12:03 -0800 (PST)
X-Original-Message-ID: <${o.deliveryId}@${o.domain ?? 'localhost'}>

Final-Recipient: rfc822; ${o.recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:400c:c0b::1b, the
 server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does
 not exist. Please try 550-5.1.1 double-checking the recipient's email
 address for typos or 550-5.1.1 unnecessary spaces. For more information, go to
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123456wra.12 - gsmtp
Last-Attempt-Date: Tue, 24 Nov 2026 01:12:04 -0800 (PST)

--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/rfc822

${originalHeaders(o)}
Content-Type: text/plain; charset=utf-8

Hello.

--000000000000a1b2c3d4e5f6a7b8--
`);
}

/** A feedback-loop spam complaint (RFC 5965), as Yahoo and others send them. */
export function arfComplaint(o: Original, feedbackType = 'abuse'): string {
  return crlf(`Return-Path: <>
From: Mail Feedback Loop <feedback@arf.mail.example.net>
To: ${verp(o)}
Subject: FW: Confirm your address
Date: Tue, 24 Nov 2026 11:00:00 +0000
Message-ID: <arf-7f3a9c@arf.mail.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Tue, 24 Nov 2026 10:55:00 +0000.
For more information about this format please see
https://www.rfc-editor.org/rfc/rfc5965.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: ${feedbackType}
User-Agent: ExampleFBL/2.0
Version: 1
Original-Mail-From: <${verp(o)}>
Original-Rcpt-To: <${o.recipient}>
Arrival-Date: Tue, 24 Nov 2026 10:55:00 +0000
Reported-Domain: ${o.domain ?? 'localhost'}
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

${originalHeaders(o)}
Content-Type: text/plain; charset=utf-8

Our news of the month.

--part1_13d.2e68ed54_boundary--
`);
}

/** A vacation notice sent to the return path. */
export function outOfOffice(o: Original): string {
  return crlf(`From: ${o.recipient}
To: ${verp(o)}
Subject: Automatic reply: Confirm your address
Auto-Submitted: auto-replied
X-Autoreply: yes
Date: Tue, 24 Nov 2026 09:13:00 +0000
Message-ID: <ooo-1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am out of the office until December 1st with no access to email.
Status: 5.1.1 is not what you think.
`);
}
