"""Follow-up check-ins: staff define a few questions (`definitions`), send them to an audience chosen like a
campaign's, people answer by USSD (`menus.checkin`) or SMS (`sms`) through the same functions (`answering`), one
reminder goes out (`reminders`), and the answers are counted by district, sex and age band (`report`)."""
